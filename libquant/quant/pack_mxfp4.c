/* BF16 values -> MXFP4 (the release's FP4 expert layout, quant/pack.h) when they are exactly
 * representable: the values a BF16 checkpoint of the release holds for its FP4 experts.
 *
 * A 32-group (inputs 32j .. 32j+31 of a row) is representable when its values are E2M1 values
 * times one power of two 2^t with t an e8m0 exponent (-127 .. 127). If some t works, every t'
 * below it with amax <= 6 · 2^t' works too (E2M1 values doubled while they stay <= 6 are E2M1
 * values), so only the smallest such t' within the e8m0 range is tried. An all-zero group gets t = -127,
 * which makes the NVFP4 conversion give its blocks the replacement scale 0.125
 * (pack_nvfp4_mx.c). The codes keep the values' signs, negative zero included, so dequantizing the
 * result reproduces every BF16 value bit for bit. With the result, dsv4_nvfp4_mx_global_scale and
 * dsv4_nvfp4_from_mxfp4 convert to NVFP4 exactly, as for the release. */
#include "quant/pack.h"

#include <math.h>
#include <string.h>

#include "formats/fp.h"

#define MX_GROUP 32

/* The group's codes (one per byte) and e8m0 scale; 0 when it is not E2M1 times a power of two. */
static int mx_group(const uint16_t *w, uint8_t *codes, uint8_t *scale)
{
    float amax = 0.0f;
    for (int i = 0; i < MX_GROUP; i++) {
        float a = fabsf(dsv4_bf16_to_f32(w[i]));
        if (!isfinite(a))
            return 0;
        amax = a > amax ? a : amax;
    }
    int t = -127;
    if (amax > 0.0f) {
        int ex;
        frexpf(amax, &ex); /* amax in [2^(ex-1), 2^ex) */
        t = amax <= ldexpf(0.75f, ex) ? ex - 3 : ex - 2;
        t = t < -127 ? -127 : t; /* a larger exponent works whenever a smaller one does */
        if (t > 127)
            return 0;
    }
    for (int i = 0; i < MX_GROUP; i++) {
        float v = dsv4_bf16_to_f32(w[i]), y = ldexpf(v, -t);
        uint8_t c = dsv4_f32_to_e2m1(y);
        float back = ldexpf(dsv4_e2m1_to_f32(c), t);
        if (memcmp(&back, &v, sizeof v))
            return 0;
        codes[i] = c;
    }
    *scale = (uint8_t)(t + 127);
    return 1;
}

int dsv4_mxfp4_from_bf16(const uint16_t *w, int64_t n, int64_t k, uint8_t *packed, uint8_t *scale)
{
    if (n < 0 || k <= 0 || k % MX_GROUP)
        return 0;
    uint8_t codes[MX_GROUP];
    for (int64_t r = 0; r < n; r++)
        for (int64_t g = 0; g < k / MX_GROUP; g++) {
            if (!mx_group(w + r * k + g * MX_GROUP, codes, scale + r * (k / MX_GROUP) + g))
                return 0;
            uint8_t *p = packed + r * (k / 2) + g * (MX_GROUP / 2);
            for (int i = 0; i < MX_GROUP / 2; i++)
                p[i] = (uint8_t)(codes[2 * i] | codes[2 * i + 1] << 4);
        }
    return 1;
}
