/* Packed weight matrices (internal.h): sizes, packing a row, reading it back. */
#include "runtime/cpu/internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

static size_t elem_bytes(isim_dtype dt)
{
    return dt == ISIM_FP32 ? 4 : dt == ISIM_BF16 ? 2 : 1;
}

size_t isim__rt_matrix_bytes(size_t n, size_t k, isim_dtype dt)
{
    size_t panels = (n + RT_NR - 1) / RT_NR, kp = k + (k & 1);
    size_t bytes = panels * RT_NR * kp * elem_bytes(dt);
    if (dt == ISIM_INT8)
        bytes += panels * RT_NR * sizeof(float);
    return bytes;
}

/* Where element (row, col) of m lives, in elements of its type from m->data. */
static size_t index_of(const rt_matrix *m, size_t row, size_t col)
{
    size_t p = row / RT_NR, lane = row % RT_NR;
    if (m->dt == ISIM_BF16)
        return ((p * (m->kp / 2) + col / 2) * RT_NR + lane) * 2 + (col & 1);
    return (p * m->kp + col) * RT_NR + lane;
}

void isim__rt_matrix_set_row(rt_matrix *m, size_t row, const float *values)
{
    /* element c of the row at index_of(m, row, c): its first, then a fixed stride along k */
    size_t first = index_of(m, row, 0);
    if (m->dt == ISIM_FP32) {
        float *d = (float *)m->data + first;
        for (size_t c = 0; c < m->k; c++)
            d[c * RT_NR] = values[c];
    } else if (m->dt == ISIM_BF16) {
        uint16_t *d = (uint16_t *)m->data + first;
        for (size_t c = 0; c < m->k; c++)
            d[(c / 2) * RT_NR * 2 + (c & 1)] = isim__rt_bf16(values[c]);
    } else {
        /* symmetric per-row quantization: the largest magnitude maps to 127 (the sources
         * give finite values only) */
        float amax = 0;
        for (size_t c = 0; c < m->k; c++)
            amax = fmaxf(amax, fabsf(values[c]));
        /* a row of denormals too small for amax / 127 takes the smallest step there is, so
         * that no value is divided by a zero scale */
        float scale = amax > 0 ? fmaxf(amax / 127.0f, FLT_TRUE_MIN) : 1.0f;
        m->scale[row] = scale;
        int8_t *d = (int8_t *)m->data + first;
        for (size_t c = 0; c < m->k; c++) {
            float q = nearbyintf(values[c] / scale);
            d[c * RT_NR] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
    }
}

void isim__rt_matrix_get_row(const rt_matrix *m, size_t row, float *out)
{
    for (size_t c = 0; c < m->k; c++) {
        size_t i = index_of(m, row, c);
        if (m->dt == ISIM_FP32)
            out[c] = ((const float *)m->data)[i];
        else if (m->dt == ISIM_BF16)
            out[c] = isim__rt_f32(((const uint16_t *)m->data)[i]);
        else
            out[c] = m->scale[row] * (float)((const int8_t *)m->data)[i];
    }
}

size_t isim__rt_xpack_bytes(int rows, size_t kp, isim_dtype matrix_dt)
{
    size_t tiles = ((size_t)rows + RT_MR - 1) / RT_MR;
    return tiles * RT_MR * kp * (matrix_dt == ISIM_BF16 ? sizeof(uint16_t) : sizeof(float));
}

void isim__rt_xpack(const float *x, size_t ldx, int rows, size_t k, size_t kp, isim_dtype matrix_dt,
                    void *out)
{
    /* rows beyond `rows` in the last tile are never read: left as they are */
    for (int r = 0; r < rows; r++) {
        size_t t = (size_t)r / RT_MR, i = (size_t)r % RT_MR;
        const float *xr = x + (size_t)r * ldx;
        if (matrix_dt == ISIM_BF16) {
            uint16_t *o = (uint16_t *)out + t * kp * RT_MR + i * 2;
            for (size_t c = 0; c < k; c++)
                o[(c / 2) * RT_MR * 2 + (c & 1)] = isim__rt_bf16(xr[c]);
            if (kp > k)
                o[(k / 2) * RT_MR * 2 + 1] = 0;
        } else {
            float *o = (float *)out + t * kp * RT_MR + i;
            for (size_t c = 0; c < k; c++)
                o[c * RT_MR] = xr[c];
            if (kp > k)
                o[k * RT_MR] = 0;
        }
    }
}
