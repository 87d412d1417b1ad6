/*
 * le_bytes.h: little-endian reads and writes of fixed-width fields, used by
 * the model encoders and decoders so that their binary forms are the same on
 * every platform and never depend on the alignment of the buffer.
 */
#ifndef CALO_LE_BYTES_H
#define CALO_LE_BYTES_H

#include <stdint.h>
#include <string.h>

static inline uint16_t
le_get_u16(const uint8_t *p)
{
	return (uint16_t) (p[0] | (p[1] << 8));
}

static inline uint32_t
le_get_u32(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
		((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static inline uint64_t
le_get_u64(const uint8_t *p)
{
	return (uint64_t) le_get_u32(p) | ((uint64_t) le_get_u32(p + 4) << 32);
}

static inline double
le_get_f64(const uint8_t *p)
{
	uint64_t	bits = le_get_u64(p);
	double		d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

static inline void
le_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
}

static inline void
le_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static inline void
le_put_u64(uint8_t *p, uint64_t v)
{
	le_put_u32(p, (uint32_t) v);
	le_put_u32(p + 4, (uint32_t) (v >> 32));
}

static inline void
le_put_f64(uint8_t *p, double d)
{
	uint64_t	bits;

	memcpy(&bits, &d, sizeof(bits));
	le_put_u64(p, bits);
}

#endif
