/* Independent references shared by the packer tests. */
#ifndef DSV4_PACK_REF_H
#define DSV4_PACK_REF_H

#include <stdint.h>
#include <string.h>

/* BF16 of x by the spec's bit rule (round to nearest even on the float32 bits), computed apart
 * from libquant's conversion. */
static inline uint16_t ref_bf16(double x)
{
    float f = (float)x;
    uint32_t b;
    memcpy(&b, &f, 4);
    b += 0x7FFF + ((b >> 16) & 1);
    return (uint16_t)(b >> 16);
}

#endif
