#ifndef FM_SHA256_H
#define FM_SHA256_H
#include <stddef.h>
#include <stdint.h>

/* 1 when the CPU has the SHA extensions (SHA-NI) that fm_sha256_blocks uses. */
int fm_sha256_hardware_available(void);

/* Runs the SHA-256 compression function over `blocks` 64-byte blocks at `data`, updating
   `state` (the eight working words, in order). Needs fm_sha256_hardware_available(). */
void fm_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks);

#endif
