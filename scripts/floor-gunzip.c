/* The per-object floor of issue 22: a minimal C loop that opens, reads and gunzips each file
 * (zlib, one stream reset between files), on one thread, and does nothing else with the bytes.
 *
 *   cc -O2 -o floor-gunzip scripts/floor-gunzip.c -lz
 *   find DIR -name '*.json.gz' -print0 | ./floor-gunzip
 *
 * Reads NUL-separated paths on standard input; prints the files gunzipped, the JSON bytes and
 * the files it could not read or inflate. `scripts/bench-org` builds and runs it when a C
 * compiler and zlib's header are there. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static unsigned char *grow(unsigned char *buffer, size_t *size, size_t want) {
    if (want <= *size) return buffer;
    unsigned char *bigger = realloc(buffer, want);
    if (!bigger) { perror("realloc"); exit(1); }
    *size = want;
    return bigger;
}

/* The whole file at `path` into `*in`; its length, or -1. */
static long read_file(const char *path, unsigned char **in, size_t *in_size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return -1; }
    *in = grow(*in, in_size, (size_t)st.st_size + 1);
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, *in + got, *in_size - got);
        if (n < 0) { close(fd); return -1; }
        if (n == 0) break;
        got += (size_t)n;
        if (got == *in_size) *in = grow(*in, in_size, *in_size * 2);
    }
    close(fd);
    return (long)got;
}

int main(void) {
    static unsigned char out[1 << 20];
    unsigned char *in = NULL;
    size_t in_size = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK) return 1;
    char *path = NULL;
    size_t path_size = 0;
    unsigned long files = 0, failed = 0;
    unsigned long long json = 0;
    while (getdelim(&path, &path_size, '\0', stdin) > 0) {
        long len = read_file(path, &in, &in_size);
        if (len < 0) { failed++; continue; }
        inflateReset(&z);
        z.next_in = in;
        z.avail_in = (uInt)len;
        int rc;
        do {
            z.next_out = out;
            z.avail_out = sizeof out;
            rc = inflate(&z, Z_NO_FLUSH);
            json += sizeof out - z.avail_out;
        } while (rc == Z_OK);
        if (rc == Z_STREAM_END) files++; else failed++;
    }
    inflateEnd(&z);
    printf("%lu files, %llu bytes of JSON, %lu failed\n", files, json, failed);
    return 0;
}
