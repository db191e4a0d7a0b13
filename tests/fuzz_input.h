/* Shared by the libFuzzer targets whose parser reads a file: the input written whole to a
 * new temporary file. */
#ifndef ISIM_FUZZ_INPUT_H
#define ISIM_FUZZ_INPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Writes data to a new file made from `path` (a mkstemp template, filled in); false, with
 * nothing left behind, when the file cannot be made or written. The caller unlinks it. */
static inline bool fuzz_input_file(char *path, const uint8_t *data, size_t size)
{
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(path);
        return false;
    }
    bool ok = fwrite(data, 1, size, f) == size;
    if (fclose(f) != 0 || !ok) {
        unlink(path);
        return false;
    }
    return true;
}

#endif
