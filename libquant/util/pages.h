/* Keeping resident memory bounded while streaming through mapped files: once a tensor has been
 * read (a source) or written and hashed (an output), its whole pages are dropped from the
 * process's mappings. For shared file mappings that costs no data: the page cache keeps every
 * byte, dirty ones included, and a later access re-faults it from there. */
#ifndef DSV4_PAGES_H
#define DSV4_PAGES_H

#include <stddef.h>

#define DSV4_FAULT_AROUND 65536 /* Linux's default fault_around_bytes */

/* Drops from the process's mappings every page of [p, p + n) rounded out to DSV4_FAULT_AROUND
 * bytes, clamped to the file mapping [map, map + map_size) that holds it (madvise past a
 * mapping's end could reach an anonymous neighbour, whose contents MADV_DONTNEED discards). The rounding matters: a read fault maps the page-cache pages of the aligned 64 KB window
 * around it (the kernel's fault-around), and in a safetensors file, sorted by dtype, those are
 * often neighbouring tensors whose jobs are already done; without it they would stay resident,
 * a window per tensor, growing with the tensor count. Only for shared file mappings: there a page another thread is still
 * reading or writing loses nothing (its bytes live in the page cache, dirty state included) and
 * is faulted back on the next access. */
void dsv4_release_pages(const void *p, size_t n, const void *map, size_t map_size);

/* This process's peak resident set in bytes (VmHWM, which starts afresh at exec), 0 when
 * /proc is not there. */
unsigned long long dsv4_peak_rss(void);

#endif
