/* AVX-512 kernels (F, BW, VL, DQ and BF16), compiled for those extensions alone and
 * called only on CPUs that have them. The matmul is an outer-product microkernel over the
 * packed panels: up to 12 rows of x by 32 outputs in 24 accumulators, one broadcast of x
 * and two loads of weights per step along k; fp32 FMAs, int8 weights widened in registers,
 * bf16 pairs through VDPBF16PS. Rows beyond 12 reuse each panel block of 256 k from L1. */
#include "runtime/cpu/internal.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define KB 512       /* k per block when x has more rows than one microkernel call takes */
#define PB 8         /* panels per block */
#define MID_ROWS 128 /* rows up to which each panel is taken whole */

/* y (tile of mr rows x 32 outputs, masks m0/m1 for the valid outputs) = or += acc */
#define TILE_OUT(MR)                                                                               \
    for (int i = 0; i < MR; i++) {                                                                 \
        float *yr = y + (size_t)i * ldy;                                                           \
        if (add) {                                                                                 \
            a[i][0] = _mm512_add_ps(a[i][0], _mm512_maskz_loadu_ps(m0, yr));                       \
            a[i][1] = _mm512_add_ps(a[i][1], _mm512_maskz_loadu_ps(m1, yr + 16));                  \
        }                                                                                          \
        _mm512_mask_storeu_ps(yr, m0, a[i][0]);                                                    \
        _mm512_mask_storeu_ps(yr + 16, m1, a[i][1]);                                               \
    }

#define ZERO(MR)                                                                                   \
    __m512 a[MR][2];                                                                               \
    _Pragma("GCC unroll 12") for (int i = 0; i < MR; i++)                                          \
    {                                                                                              \
        a[i][0] = _mm512_setzero_ps();                                                             \
        a[i][1] = _mm512_setzero_ps();                                                             \
    }

#define DEF_F32(MR)                                                                                \
    static void mk_f32_##MR(const float *w, const float *x, size_t k0, size_t k1, float *y,        \
                            size_t ldy, __mmask16 m0, __mmask16 m1, const float *scale, bool add)  \
    {                                                                                              \
        (void)scale;                                                                               \
        ZERO(MR)                                                                                   \
        const float *wp = w + k0 * RT_NR, *xp = x + k0 * RT_MR;                                    \
        for (size_t k = k0; k < k1; k++, wp += RT_NR, xp += RT_MR) {                               \
            __m512 w0 = _mm512_load_ps(wp), w1 = _mm512_load_ps(wp + 16);                          \
            _Pragma("GCC unroll 12") for (int i = 0; i < MR; i++)                                  \
            {                                                                                      \
                __m512 xb = _mm512_set1_ps(xp[i]);                                                 \
                a[i][0] = _mm512_fmadd_ps(xb, w0, a[i][0]);                                        \
                a[i][1] = _mm512_fmadd_ps(xb, w1, a[i][1]);                                        \
            }                                                                                      \
        }                                                                                          \
        TILE_OUT(MR)                                                                               \
    }

#define DEF_I8(MR)                                                                                 \
    static void mk_i8_##MR(const int8_t *w, const float *x, size_t k0, size_t k1, float *y,        \
                           size_t ldy, __mmask16 m0, __mmask16 m1, const float *scale, bool add)   \
    {                                                                                              \
        ZERO(MR)                                                                                   \
        const int8_t *wp = w + k0 * RT_NR;                                                         \
        const float *xp = x + k0 * RT_MR;                                                          \
        for (size_t k = k0; k < k1; k++, wp += RT_NR, xp += RT_MR) {                               \
            __m256i q = _mm256_load_si256((const __m256i *)(const void *)wp);                      \
            __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)));       \
            __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)));  \
            _Pragma("GCC unroll 12") for (int i = 0; i < MR; i++)                                  \
            {                                                                                      \
                __m512 xb = _mm512_set1_ps(xp[i]);                                                 \
                a[i][0] = _mm512_fmadd_ps(xb, w0, a[i][0]);                                        \
                a[i][1] = _mm512_fmadd_ps(xb, w1, a[i][1]);                                        \
            }                                                                                      \
        }                                                                                          \
        __m512 s0 = _mm512_loadu_ps(scale), s1 = _mm512_loadu_ps(scale + 16);                      \
        for (int i = 0; i < MR; i++) {                                                             \
            a[i][0] = _mm512_mul_ps(a[i][0], s0);                                                  \
            a[i][1] = _mm512_mul_ps(a[i][1], s1);                                                  \
        }                                                                                          \
        TILE_OUT(MR)                                                                               \
    }

/* bf16: k0, k1 even; w points at the panel, x at bf16 rows */
#define DEF_BF16(MR)                                                                               \
    static void mk_bf16_##MR(const uint16_t *w, const uint16_t *x, size_t k0, size_t k1, float *y, \
                             size_t ldy, __mmask16 m0, __mmask16 m1, const float *scale, bool add) \
    {                                                                                              \
        (void)scale;                                                                               \
        ZERO(MR)                                                                                   \
        const uint16_t *wp = w + k0 * RT_NR, *xp = x + k0 * RT_MR;                                 \
        for (size_t k = k0; k < k1; k += 2, wp += 2 * RT_NR, xp += 2 * RT_MR) {                    \
            __m512bh w0 = (__m512bh)_mm512_load_si512((const void *)wp);                           \
            __m512bh w1 = (__m512bh)_mm512_load_si512((const void *)(wp + 32));                    \
            _Pragma("GCC unroll 12") for (int i = 0; i < MR; i++)                                  \
            {                                                                                      \
                int32_t pair;                                                                      \
                memcpy(&pair, xp + 2 * i, sizeof pair);                                            \
                __m512bh xb = (__m512bh)_mm512_set1_epi32(pair);                                   \
                a[i][0] = _mm512_dpbf16_ps(a[i][0], xb, w0);                                       \
                a[i][1] = _mm512_dpbf16_ps(a[i][1], xb, w1);                                       \
            }                                                                                      \
        }                                                                                          \
        TILE_OUT(MR)                                                                               \
    }

#define DEF_ALL(MR) DEF_F32(MR) DEF_I8(MR) DEF_BF16(MR)
DEF_ALL(1)
DEF_ALL(2)
DEF_ALL(3)
DEF_ALL(4)
DEF_ALL(5)
DEF_ALL(6)
DEF_ALL(7)
DEF_ALL(8)
DEF_ALL(9)
DEF_ALL(10)
DEF_ALL(11)
DEF_ALL(12)

typedef void (*mk_f32_fn)(const float *, const float *, size_t, size_t, float *, size_t, __mmask16,
                          __mmask16, const float *, bool);
typedef void (*mk_i8_fn)(const int8_t *, const float *, size_t, size_t, float *, size_t, __mmask16,
                         __mmask16, const float *, bool);
typedef void (*mk_bf16_fn)(const uint16_t *, const uint16_t *, size_t, size_t, float *, size_t,
                           __mmask16, __mmask16, const float *, bool);

static const mk_f32_fn MK_F32[RT_MR + 1] = {NULL,      mk_f32_1,  mk_f32_2, mk_f32_3, mk_f32_4,
                                            mk_f32_5,  mk_f32_6,  mk_f32_7, mk_f32_8, mk_f32_9,
                                            mk_f32_10, mk_f32_11, mk_f32_12};
static const mk_i8_fn MK_I8[RT_MR + 1] = {NULL,     mk_i8_1,  mk_i8_2, mk_i8_3, mk_i8_4,
                                          mk_i8_5,  mk_i8_6,  mk_i8_7, mk_i8_8, mk_i8_9,
                                          mk_i8_10, mk_i8_11, mk_i8_12};
static const mk_bf16_fn MK_BF16[RT_MR + 1] = {
    NULL,      mk_bf16_1, mk_bf16_2, mk_bf16_3,  mk_bf16_4,  mk_bf16_5, mk_bf16_6,
    mk_bf16_7, mk_bf16_8, mk_bf16_9, mk_bf16_10, mk_bf16_11, mk_bf16_12};

/* The tile of rows t0.. (mr of them) by panel p over k in [k0, k1). */
static void tile(const rt_matrix *w, const void *x, int t0, int mr, size_t p, size_t k0, size_t k1,
                 float *y, size_t ldy)
{
    const size_t kp = w->kp, j0 = p * RT_NR;
    size_t valid = w->n - j0 < RT_NR ? w->n - j0 : RT_NR;
    __mmask16 m0 = valid >= 16 ? 0xffff : (__mmask16)((1u << valid) - 1);
    __mmask16 m1 = valid >= 32 ? 0xffff : valid > 16 ? (__mmask16)((1u << (valid - 16)) - 1) : 0;
    size_t tl = (size_t)t0 / RT_MR;
    float *yt = y + (size_t)t0 * ldy + j0;
    if (w->dt == ISIM_FP32)
        MK_F32[mr]((const float *)w->data + p * kp * RT_NR, (const float *)x + tl * kp * RT_MR, k0,
                   k1, yt, ldy, m0, m1, NULL, k0 > 0);
    else if (w->dt == ISIM_INT8)
        MK_I8[mr]((const int8_t *)w->data + p * kp * RT_NR, (const float *)x + tl * kp * RT_MR, k0,
                  k1, yt, ldy, m0, m1, w->scale + j0, k0 > 0);
    else
        MK_BF16[mr]((const uint16_t *)w->data + p * kp * RT_NR,
                    (const uint16_t *)x + tl * kp * RT_MR, k0, k1, yt, ldy, m0, m1, NULL, k0 > 0);
}

/* Decode and small batches (up to MID_ROWS rows): each panel streamed once, over all of k,
 * for every tile of rows. Prefill: blocks of PB panels by KB of k (in L2), each tile of x
 * (in L1) run across the block's panels, so that x is read from L2 once per PB panels and
 * the block's outputs stay in L2 across k. */
static void matmul(const rt_matrix *w, const void *x, int rows, float *y, size_t ldy, size_t p0,
                   size_t p1, bool add_bias)
{
    const size_t kp = w->kp;
    if (rows <= MID_ROWS) {
        /* each panel streamed once from memory, whole, then kept in L2 for the other tiles
         * of rows (up to MID_ROWS rows of x, which also stay in L2) */
        for (size_t p = p0; p < p1; p++)
            for (int t0 = 0; t0 < rows; t0 += RT_MR)
                tile(w, x, t0, rows - t0 < RT_MR ? rows - t0 : RT_MR, p, 0, kp, y, ldy);
    } else {
        for (size_t pb = p0; pb < p1; pb += PB) {
            size_t pe = pb + PB < p1 ? pb + PB : p1;
            for (size_t k0 = 0; k0 < kp; k0 += KB) {
                size_t k1 = k0 + KB < kp ? k0 + KB : kp;
                for (int t0 = 0; t0 < rows; t0 += RT_MR) {
                    int mr = rows - t0 < RT_MR ? rows - t0 : RT_MR;
                    for (size_t p = pb; p < pe; p++)
                        tile(w, x, t0, mr, p, k0, k1, y, ldy);
                }
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

static float hsum(__m512 v)
{
    return _mm512_reduce_add_ps(v);
}

static float dot(const float *a, const float *b, int n)
{
    __m512 s = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16)
        s = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s);
    }
    return hsum(s);
}

static void axpy(float a, const float *x, float *y, int n)
{
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i,
                         _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(
            y + i, m,
            _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

/* 16 bf16 -> 16 fp32 */
static __m512 widen(__m256i h)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static float dot_bf16(const float *a, const uint16_t *b, int n)
{
    __m512 s = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16)
        s = _mm512_fmadd_ps(_mm512_loadu_ps(a + i),
                            widen(_mm256_loadu_si256((const __m256i *)(const void *)(b + i))), s);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
                            widen(_mm256_maskz_loadu_epi16(m, b + i)), s);
    }
    return hsum(s);
}

static void axpy_bf16(float a, const uint16_t *x, float *y, int n)
{
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(
            y + i,
            _mm512_fmadd_ps(va, widen(_mm256_loadu_si256((const __m256i *)(const void *)(x + i))),
                            _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_fmadd_ps(va, widen(_mm256_maskz_loadu_epi16(m, x + i)),
                                              _mm512_maskz_loadu_ps(m, y + i)));
    }
}

/* e^x for x in [-104, 88.7]: Cody-Waite reduction by ln 2, Cephes's degree-6 polynomial
 * (about 1 ulp), 2^n by VSCALEFPS */
static __m512 exp512(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.7f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
}

static void silu_mul(const float *g, const float *u, float *out, int n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 gv = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv));
        __m512 v = _mm512_mul_ps(_mm512_div_ps(gv, _mm512_add_ps(one, e)), uv);
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

static void softmax(float *x, int n)
{
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, x + i));
    }
    __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmax));
        e = _mm512_maskz_mov_ps(m, e);
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(x + i, m, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

static float read_sum(const float *x, size_t n)
{
    __m512 s[8];
    for (int j = 0; j < 8; j++)
        s[j] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 128 <= n; i += 128)
        for (int j = 0; j < 8; j++)
            s[j] = _mm512_add_ps(s[j], _mm512_loadu_ps(x + i + 16 * j));
    float r = 0;
    for (; i < n; i++)
        r += x[i];
    for (int j = 1; j < 8; j++)
        s[0] = _mm512_add_ps(s[0], s[j]);
    return r + _mm512_reduce_add_ps(s[0]);
}

/* 24 independent accumulators: enough to cover the FMA latency on two pipes */
static double peak(int which, long iters)
{
    __m512 a[24];
    for (int j = 0; j < 24; j++)
        a[j] = _mm512_set1_ps(1.0f + 0.01f * (float)j);
    const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    const __m512bh bb = (__m512bh)_mm512_set1_epi32(0x3f803f80),
                   cc = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (long i = 0; i < iters; i++) {
        if (which == 0) {
            _Pragma("GCC unroll 24") for (int j = 0; j < 24; j++) a[j] =
                _mm512_fmadd_ps(a[j], b, c);
        } else {
            _Pragma("GCC unroll 24") for (int j = 0; j < 24; j++) a[j] =
                _mm512_dpbf16_ps(a[j], bb, cc);
        }
    }
    __m512 s = a[0];
    for (int j = 1; j < 24; j++)
        s = _mm512_add_ps(s, a[j]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    /* an fp32 FMA: 16 lanes x 2 FLOP; a bf16 dot product: 16 lanes x 2 pairs x 2 FLOP */
    return (which == 0 ? 32.0 : 64.0) * 24.0 * (double)iters;
}

static __m512 load16(const void *p, size_t i, __mmask16 m, bool bf16)
{
    if (bf16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i)), 16));
    return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}

/* Scores of 4 queries by 64 positions (4 tiles) at a time against the tiled keys: each
 * key load serves 4 queries, each query value 4 key vectors, no horizontal sums, and the
 * tiles stream from memory in order; positions a query may not see masked to -inf; the
 * softmax over each query's range, zeros elsewhere; then the values, 4 queries by 4
 * registers of hd at a time. A short last group of queries repeats its last query rather
 * than branch in the inner loops. */
static void attend(const float *const *q, const int *first, const int *last, int nq, int hd,
                   const void *kt, const void *v, int span, float scale, bool bf16, float *scores,
                   float *const *out)
{
    const __m512 vs = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    float qb[4 * 512]; /* hd <= 512 */
    for (int i0 = 0; i0 < nq; i0 += 4) {
        int qn = nq - i0 < 4 ? nq - i0 : 4;
        int lo = span, hi = 0; /* the positions these queries see */
        for (int i = 0; i < qn; i++) {
            lo = first[i0 + i] < lo ? first[i0 + i] : lo;
            hi = last[i0 + i] + 1 > hi ? last[i0 + i] + 1 : hi;
        }
        /* the 4 queries interleaved: qb[d * 4 + i] */
        for (int i = 0; i < 4; i++) {
            const float *qi = q[i0 + (i < qn ? i : qn - 1)];
            for (int d = 0; d < hd; d++)
                qb[d * 4 + i] = qi[d];
        }
        for (int j0 = lo / 16 * 16; j0 < hi; j0 += 64) {
            __mmask16 m[4];
            for (int t = 0; t < 4; t++) {
                __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(j0 + 16 * t), iota);
                m[t] = _mm512_cmpge_epi32_mask(idx, _mm512_set1_epi32(lo)) &
                       _mm512_cmplt_epi32_mask(idx, _mm512_set1_epi32(hi));
            }
            __m512 a[4][4];
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
                _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++) a[i][t] = _mm512_setzero_ps();
            const size_t tile = (size_t)(j0 / 16) * (size_t)hd * 16;
            const float *qd = qb;
            /* the next block's keys, a block ahead: the access is 4 interleaved streams,
             * too many for the hardware prefetchers to keep up with alone */
            const char *next = (const char *)kt + (tile + (size_t)hd * 64) * (bf16 ? 2 : 4);
            const size_t step = (bf16 ? 2 : 4) * 16;
            for (int d = 0; d < hd; d++, qd += 4) {
                if (j0 + 64 < hi) {
                    _mm_prefetch(next + (size_t)d * step, _MM_HINT_T0);
                    _mm_prefetch(next + ((size_t)hd + (size_t)d) * step, _MM_HINT_T0);
                    _mm_prefetch(next + ((size_t)2 * hd + (size_t)d) * step, _MM_HINT_T0);
                    _mm_prefetch(next + ((size_t)3 * hd + (size_t)d) * step, _MM_HINT_T0);
                }
                __m512 k[4];
                _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++) k[t] =
                    load16(kt, tile + ((size_t)t * (size_t)hd + (size_t)d) * 16, m[t], bf16);
                _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
                {
                    __m512 x = _mm512_set1_ps(qd[i]);
                    _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++) a[i][t] =
                        _mm512_fmadd_ps(x, k[t], a[i][t]);
                }
            }
            /* constant indices only, so that the accumulators stay in registers */
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
            {
                if (i < qn) {
                    float *sc = scores + (size_t)(i0 + i) * span;
                    __m512i f = _mm512_set1_epi32(first[i0 + i]),
                            l = _mm512_set1_epi32(last[i0 + i]);
                    _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++)
                    {
                        int j = j0 + 16 * t;
                        if (j < hi) {
                            __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(j), iota);
                            __mmask16 ok =
                                _mm512_cmpge_epi32_mask(idx, f) & _mm512_cmple_epi32_mask(idx, l);
                            __mmask16 in = _mm512_cmplt_epi32_mask(idx, _mm512_set1_epi32(span));
                            _mm512_mask_storeu_ps(
                                sc + j, in,
                                _mm512_mask_blend_ps(ok, ninf, _mm512_mul_ps(a[i][t], vs)));
                        }
                    }
                }
            }
        }
        for (int i = 0; i < qn; i++) {
            float *sc = scores + (size_t)(i0 + i) * span;
            softmax(sc + first[i0 + i], last[i0 + i] - first[i0 + i] + 1);
            for (int j = lo; j < first[i0 + i]; j++)
                sc[j] = 0;
            for (int j = last[i0 + i] + 1; j < hi; j++)
                sc[j] = 0;
        }
        const float *s0 = scores + (size_t)i0 * span,
                    *s1 = scores + (size_t)(i0 + (qn > 1 ? 1 : 0)) * span,
                    *s2 = scores + (size_t)(i0 + (qn > 2 ? 2 : qn - 1)) * span,
                    *s3 = scores + (size_t)(i0 + (qn > 3 ? 3 : qn - 1)) * span;
        const int nv = (hd + 15) / 16;
        for (int c0 = 0; c0 < nv; c0 += 4) {
            int cn = nv - c0 < 4 ? nv - c0 : 4;
            __m512 acc[4][4];
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
                _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) acc[i][c] = _mm512_setzero_ps();
            __mmask16 mk[4];
            for (int c = 0; c < 4; c++) {
                int e = (c0 + c) * 16;
                mk[c] = c < cn ? (hd - e >= 16 ? 0xffff : (__mmask16)((1u << (hd - e)) - 1)) : 0;
            }
            const size_t row = (size_t)hd * (bf16 ? 2 : 4);
            for (int j = lo; j < hi; j++) {
                if (j + 32 < hi)
                    for (size_t b = 0; b < row; b += 64)
                        _mm_prefetch((const char *)v + (size_t)(j + 32) * row + b, _MM_HINT_T0);
                __m512 vv[4];
                _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) vv[c] =
                    load16(v, (size_t)j * hd + (size_t)(c0 + c) * 16, mk[c], bf16);
                __m512 p0 = _mm512_set1_ps(s0[j]), p1 = _mm512_set1_ps(s1[j]),
                       p2 = _mm512_set1_ps(s2[j]), p3 = _mm512_set1_ps(s3[j]);
                _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++)
                {
                    acc[0][c] = _mm512_fmadd_ps(p0, vv[c], acc[0][c]);
                    acc[1][c] = _mm512_fmadd_ps(p1, vv[c], acc[1][c]);
                    acc[2][c] = _mm512_fmadd_ps(p2, vv[c], acc[2][c]);
                    acc[3][c] = _mm512_fmadd_ps(p3, vv[c], acc[3][c]);
                }
            }
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
                _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) if (i < qn && c < cn)
                    _mm512_mask_storeu_ps(out[i0 + i] + (c0 + c) * 16, mk[c], acc[i][c]);
        }
    }
}

const rt_kernels isim__rt_kernels_avx512 = {"avx512", matmul,  dot,      axpy, dot_bf16, axpy_bf16,
                                            silu_mul, softmax, read_sum, peak, attend};
