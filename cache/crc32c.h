/*
 * crc32c.h - CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum every cached block carries (store.c). Debian ships no C
 * library for it.
 *
 * crc32c() is the one to call: the SSE4.2 instruction where the CPU has it
 * (chosen once, at the first call), else slice-by-8 tables. The two are
 * exposed for the unit test, which checks they agree.
 *
 * Chaining: crc32c(crc32c(0, a, n), b, m) == crc32c(0, a || b, n + m).
 */
#ifndef RGT_CRC32C_H
#define RGT_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* Portable slice-by-8 path. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* Whether crc32c_hw() may be called on this CPU (x86_64 with SSE4.2). */
bool crc32c_hw_available(void);
/* The instruction path; only when crc32c_hw_available(). */
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);

#endif
