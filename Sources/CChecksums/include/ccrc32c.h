#ifndef FMODEL_CCRC32C_H
#define FMODEL_CCRC32C_H
#include <stddef.h>
#include <stdint.h>

/// True when the CPU has the SSE4.2 `crc32` instruction.
int fm_crc32c_hardware_available(void);

/// CRC-32C of `length` bytes continuing from `crc` (pre-inverted state), using the SSE4.2
/// `crc32` instruction; call only when fm_crc32c_hardware_available().
uint32_t fm_crc32c_hardware(uint32_t crc, const void *data, size_t length);
#endif
