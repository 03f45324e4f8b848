/* zip_format.h: what the ZIP reader (zip_archive.c) and writer (zip_writer.c) share of PKWARE's APPNOTE.TXT 6.3:
 * the records' signatures and fixed sizes, little-endian field reads, and the entries' CRC-32 (zlib's, over any
 * length). Internal to those two files. */
#ifndef EDM2_HOST_ZIP_FORMAT_H
#define EDM2_HOST_ZIP_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#define ZIP_SIG_LOCAL 0x04034b50u     /* local header, 30 bytes + name + extra, before each entry's bytes */
#define ZIP_SIG_CENTRAL 0x02014b50u   /* central directory record, 46 bytes + name + extra + comment */
#define ZIP_SIG_END 0x06054b50u       /* end of central directory record, 22 bytes + comment */
#define ZIP_SIG_END64 0x06064b50u     /* ZIP64 end of central directory record, 56 bytes */
#define ZIP_SIG_LOCATOR64 0x07064b50u /* its locator, 20 bytes, right before the end record */
#define ZIP_LOCAL_BYTES 30
#define ZIP_CENTRAL_BYTES 46
#define ZIP_END_BYTES 22
#define ZIP_END64_BYTES 56
#define ZIP_LOCATOR64_BYTES 20
#define ZIP_ZLIB_CHUNK ((size_t)1 << 30) /* zlib's lengths are 32-bit */

static inline uint16_t zip_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t zip_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t zip_u64(const unsigned char *p) { return (uint64_t)zip_u32(p) | (uint64_t)zip_u32(p + 4) << 32; }

static inline uint32_t zip_crc32(const unsigned char *p, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t at = 0; at < n; at += ZIP_ZLIB_CHUNK)
        crc = crc32(crc, p + at, (uInt)(n - at < ZIP_ZLIB_CHUNK ? n - at : ZIP_ZLIB_CHUNK));
    return (uint32_t)crc;
}

#endif
