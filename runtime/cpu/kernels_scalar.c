/* Plain C kernels: the set for CPUs without AVX2, and the oracle the SIMD sets are tested
 * against. Sums run along k in order, in fp32. */
#include "runtime/cpu/internal.h"

#include <math.h>

static void matmul(const rt_matrix *w, const void *xpack, int rows, float *y, size_t ldy, size_t p0,
                   size_t p1, bool add_bias)
{
    size_t j1 = p1 * RT_NR < w->n ? p1 * RT_NR : w->n;
    for (int t = 0; t < rows; t++) {
        size_t tile = (size_t)t / RT_MR, i = (size_t)t % RT_MR;
        for (size_t j = p0 * RT_NR; j < j1; j++) {
            size_t p = j / RT_NR, lane = j % RT_NR;
            float s = 0;
            if (w->dt == ISIM_FP32) {
                const float *wp = (const float *)w->data + p * w->kp * RT_NR + lane;
                const float *xr = (const float *)xpack + tile * w->kp * RT_MR + i;
                for (size_t c = 0; c < w->k; c++)
                    s += xr[c * RT_MR] * wp[c * RT_NR];
            } else if (w->dt == ISIM_INT8) {
                const int8_t *wp = (const int8_t *)w->data + p * w->kp * RT_NR + lane;
                const float *xr = (const float *)xpack + tile * w->kp * RT_MR + i;
                for (size_t c = 0; c < w->k; c++)
                    s += xr[c * RT_MR] * (float)wp[c * RT_NR];
                s *= w->scale[j];
            } else {
                const uint16_t *wp = (const uint16_t *)w->data + p * w->kp * RT_NR + lane * 2;
                const uint16_t *xr = (const uint16_t *)xpack + tile * w->kp * RT_MR + i * 2;
                for (size_t c = 0; c < w->k; c++)
                    s += isim__rt_f32(xr[(c / 2) * RT_MR * 2 + (c & 1)]) *
                         isim__rt_f32(wp[(c / 2) * RT_NR * 2 + (c & 1)]);
            }
            if (add_bias && w->bias)
                s += w->bias[j];
            y[(size_t)t * ldy + j] = s;
        }
    }
}

static float dot(const float *a, const float *b, int n)
{
    float s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy(float a, const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

static float dot_bf16(const float *a, const uint16_t *b, int n)
{
    float s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * isim__rt_f32(b[i]);
    return s;
}

static void axpy_bf16(float a, const uint16_t *x, float *y, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * isim__rt_f32(x[i]);
}

static void silu_mul(const float *g, const float *u, float *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void softmax(float *x, int n)
{
    float mx = x[0], sum = 0;
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    for (int i = 0; i < n; i++)
        x[i] /= sum;
}

static float read_sum(const float *x, size_t n)
{
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            s[j] += x[i + j];
    for (; i < n; i++)
        s[0] += x[i];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static double peak(int which, long iters)
{
    (void)which;
    float a[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const float b = 0.999999f, c = 1e-7f;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++)
            a[j] = a[j] * b + c;
    volatile float sink = a[0] + a[7];
    (void)sink;
    return 16.0 * (double)iters;
}

void isim__rt_attend_scalar(const float *const *q, const int *first, const int *last, int nq,
                            int hd, const void *kt, const void *v, int span, float scale,
                            bool kv_bf16, float *scores, float *const *out)
{
    const float *kf = kt, *vf = v;
    const uint16_t *kb = kt, *vb = v;
    for (int i = 0; i < nq; i++) {
        int a = first[i], n = last[i] - first[i] + 1;
        float *sc = scores + (size_t)i * span + a;
        for (int j = 0; j < n; j++) {
            float s = 0;
            for (int d = 0; d < hd; d++) {
                size_t at = isim__rt_kt_at(hd, a + j, d);
                s += q[i][d] * (kv_bf16 ? isim__rt_f32(kb[at]) : kf[at]);
            }
            sc[j] = s * scale;
        }
        softmax(sc, n);
        for (int d = 0; d < hd; d++) {
            float o = 0;
            for (int j = 0; j < n; j++) {
                size_t at = (size_t)(a + j) * hd + (size_t)d;
                o += sc[j] * (kv_bf16 ? isim__rt_f32(vb[at]) : vf[at]);
            }
            out[i][d] = o;
        }
    }
}

const rt_kernels isim__rt_kernels_scalar = {"scalar",
                                            matmul,
                                            dot,
                                            axpy,
                                            dot_bf16,
                                            axpy_bf16,
                                            silu_mul,
                                            softmax,
                                            read_sum,
                                            peak,
                                            isim__rt_attend_scalar};
