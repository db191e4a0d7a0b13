/* AVX2 + FMA kernels, for x86-64 CPUs without AVX-512: the same packed panels, taken 16
 * outputs at a time (two 8-wide registers) by up to 4 rows of x. bf16 weights are widened
 * to fp32 in registers (the pairs split into even and odd k), int8 likewise. */
#include "runtime/cpu/internal.h"

#include <immintrin.h>
#include <math.h>

#define MR2 4
#define KB 256

static __m256 load_masked(const float *p, int valid)
{
    if (valid >= 8)
        return _mm256_loadu_ps(p);
    float t[8] = {0};
    for (int i = 0; i < valid; i++)
        t[i] = p[i];
    return _mm256_loadu_ps(t);
}

static void store_masked(float *p, __m256 v, int valid)
{
    if (valid >= 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    float t[8];
    _mm256_storeu_ps(t, v);
    for (int i = 0; i < valid; i++)
        p[i] = t[i];
}

/* 16 outputs (half a panel, `half` 0 or 1) for mr rows of x over k in [k0, k1); x is the
 * packed tile, i0 the first row's place in it. */
static void micro(const rt_matrix *w, size_t p, int half, const void *x, int i0, int mr, size_t k0,
                  size_t k1, float *y, size_t ldy, int valid, bool add)
{
    __m256 a[MR2][2];
    for (int i = 0; i < MR2; i++)
        a[i][0] = a[i][1] = _mm256_setzero_ps();
    const size_t kp = w->kp;
    if (w->dt == ISIM_FP32 || w->dt == ISIM_INT8) {
        const float *xf = x;
        for (size_t k = k0; k < k1; k++) {
            __m256 w0, w1;
            if (w->dt == ISIM_FP32) {
                const float *wp = (const float *)w->data + (p * kp + k) * RT_NR + half * 16;
                w0 = _mm256_load_ps(wp);
                w1 = _mm256_load_ps(wp + 8);
            } else {
                const int8_t *wp = (const int8_t *)w->data + (p * kp + k) * RT_NR + half * 16;
                __m128i q = _mm_loadu_si128((const __m128i *)(const void *)wp);
                w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
                w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
            }
            for (int i = 0; i < mr; i++) {
                __m256 xb = _mm256_set1_ps(xf[k * RT_MR + (size_t)(i0 + i)]);
                a[i][0] = _mm256_fmadd_ps(xb, w0, a[i][0]);
                a[i][1] = _mm256_fmadd_ps(xb, w1, a[i][1]);
            }
        }
        if (w->dt == ISIM_INT8) {
            const float *s = w->scale + p * RT_NR + half * 16;
            __m256 s0 = _mm256_loadu_ps(s), s1 = _mm256_loadu_ps(s + 8);
            for (int i = 0; i < mr; i++) {
                a[i][0] = _mm256_mul_ps(a[i][0], s0);
                a[i][1] = _mm256_mul_ps(a[i][1], s1);
            }
        }
    } else {
        /* bf16 pairs: 16 outputs x (k, k+1) = 32 uint16 = two 256-bit loads of 8 pairs */
        const uint16_t *xb16 = x;
        const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
        for (size_t k = k0; k < k1; k += 2) {
            const uint16_t *wp =
                (const uint16_t *)w->data + ((p * (kp / 2) + k / 2) * RT_NR + half * 16) * 2;
            __m256i q0 = _mm256_loadu_si256((const __m256i *)(const void *)wp);
            __m256i q1 = _mm256_loadu_si256((const __m256i *)(const void *)(wp + 16));
            __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(q0, 16));
            __m256 o0 = _mm256_castsi256_ps(_mm256_and_si256(q0, hi));
            __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(q1, 16));
            __m256 o1 = _mm256_castsi256_ps(_mm256_and_si256(q1, hi));
            for (int i = 0; i < mr; i++) {
                const uint16_t *xr = xb16 + ((k / 2) * RT_MR + (size_t)(i0 + i)) * 2;
                __m256 xe = _mm256_set1_ps(isim__rt_f32(xr[0]));
                __m256 xo = _mm256_set1_ps(isim__rt_f32(xr[1]));
                a[i][0] = _mm256_fmadd_ps(xe, e0, a[i][0]);
                a[i][0] = _mm256_fmadd_ps(xo, o0, a[i][0]);
                a[i][1] = _mm256_fmadd_ps(xe, e1, a[i][1]);
                a[i][1] = _mm256_fmadd_ps(xo, o1, a[i][1]);
            }
        }
    }
    for (int i = 0; i < mr; i++) {
        float *yr = y + (size_t)i * ldy;
        int v0 = valid < 8 ? valid : 8, v1 = valid > 8 ? valid - 8 : 0;
        if (add) {
            a[i][0] = _mm256_add_ps(a[i][0], load_masked(yr, v0));
            if (v1)
                a[i][1] = _mm256_add_ps(a[i][1], load_masked(yr + 8, v1));
        }
        store_masked(yr, a[i][0], v0);
        if (v1)
            store_masked(yr + 8, a[i][1], v1);
    }
}

static void matmul(const rt_matrix *w, const void *x, int rows, float *y, size_t ldy, size_t p0,
                   size_t p1, bool add_bias)
{
    const size_t kp = w->kp;
    const size_t kb = rows <= MR2 ? kp : KB;
    const size_t xsize = w->dt == ISIM_BF16 ? sizeof(uint16_t) : sizeof(float);
    for (size_t k0 = 0; k0 < kp; k0 += kb) {
        size_t k1 = k0 + kb < kp ? k0 + kb : kp;
        for (size_t p = p0; p < p1; p++)
            for (int half = 0; half < 2; half++) {
                size_t j0 = p * RT_NR + (size_t)half * 16;
                if (j0 >= w->n)
                    break;
                int valid = w->n - j0 < 16 ? (int)(w->n - j0) : 16;
                for (int t0 = 0; t0 < rows; t0 += MR2) {
                    int mr = rows - t0 < MR2 ? rows - t0 : MR2;
                    size_t tile = (size_t)t0 / RT_MR;
                    micro(w, p, half, (const char *)x + tile * kp * RT_MR * xsize, t0 % RT_MR, mr,
                          k0, k1, y + (size_t)t0 * ldy + j0, ldy, valid, k0 > 0);
                }
            }
    }
    if (add_bias && w->bias) {
        size_t j0 = p0 * RT_NR, j1 = p1 * RT_NR < w->n ? p1 * RT_NR : w->n;
        for (int t = 0; t < rows; t++)
            for (size_t j = j0; j < j1; j++)
                y[(size_t)t * ldy + j] += w->bias[j];
    }
}

static float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float dot(const float *a, const float *b, int n)
{
    __m256 s = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        s = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s);
    float r = hsum(s);
    for (; i < n; i++)
        r += a[i] * b[i];
    return r;
}

static void axpy(float a, const float *x, float *y, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static __m256 widen(const uint16_t *p)
{
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static float dot_bf16(const float *a, const uint16_t *b, int n)
{
    __m256 s = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        s = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), widen(b + i), s);
    float r = hsum(s);
    for (; i < n; i++)
        r += a[i] * isim__rt_f32(b[i]);
    return r;
}

static void axpy_bf16(float a, const uint16_t *x, float *y, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, widen(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * isim__rt_f32(x[i]);
}

/* e^x for x in [-87.3, 88.3]: as the AVX-512 set, 2^n built in the exponent bits */
static __m256 exp256(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static void silu_mul(const float *g, const float *u, float *out, int n)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), gv));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)),
                                                _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void softmax(float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    __m256 vmax = _mm256_set1_ps(mx), sum = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        sum = _mm256_add_ps(sum, e);
        _mm256_storeu_ps(x + i, e);
    }
    float s = hsum(sum);
    for (; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    float inv = 1.0f / s;
    for (i = 0; i < n; i++)
        x[i] *= inv;
}

static float read_sum(const float *x, size_t n)
{
    __m256 s[8];
    for (int j = 0; j < 8; j++)
        s[j] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int j = 0; j < 8; j++)
            s[j] = _mm256_add_ps(s[j], _mm256_loadu_ps(x + i + 8 * j));
    float r = 0;
    for (; i < n; i++)
        r += x[i];
    for (int j = 1; j < 8; j++)
        s[0] = _mm256_add_ps(s[0], s[j]);
    return r + hsum(s[0]);
}

/* 12 independent accumulators; bf16 has no AVX2 instruction, so both measure fp32 FMAs */
static double peak(int which, long iters)
{
    (void)which;
    __m256 a[12];
    for (int j = 0; j < 12; j++)
        a[j] = _mm256_set1_ps(1.0f + 0.01f * (float)j);
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 12; j++)
            a[j] = _mm256_fmadd_ps(a[j], b, c);
    __m256 s = a[0];
    for (int j = 1; j < 12; j++)
        s = _mm256_add_ps(s, a[j]);
    volatile float sink = hsum(s);
    (void)sink;
    return 16.0 * 12.0 * (double)iters;
}

const rt_kernels isim__rt_kernels_avx2 = {"avx2",
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
