/* E2M1 (FP4) codes <-> float32 (see fp.h). */
#include "formats/fp.h"
#include "formats/fp_round.h"

static const float e2m1_mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

float dsv4_e2m1_to_f32(uint8_t code)
{
    float v = e2m1_mag[code & 7u];
    return (code & 8u) ? -v : v;
}

uint8_t dsv4_f32_to_e2m1(float x)
{
    uint32_t u = dsv4_f32_bits(x), sign = (u >> 28) & 8u, a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return 0;
    uint32_t mag = a == 0x7F800000u ? 7u : dsv4_round_mag(a, 1, 1);
    if (mag > 7u)
        mag = 7u;
    return (uint8_t)(sign | mag);
}
