#include "ccrc32c.h"
#include <string.h>

#if defined(__x86_64__)
int fm_crc32c_hardware_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
uint32_t fm_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    const unsigned char *p = data;
    uint64_t c = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#else
int fm_crc32c_hardware_available(void) { return 0; }
uint32_t fm_crc32c_hardware(uint32_t crc, const void *data, size_t length) { (void)data; (void)length; return crc; }
#endif
