/* Page release for mapped files (see pages.h). */
#include "util/pages.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

void dsv4_release_pages(const void *p, size_t n, const void *map, size_t map_size)
{
    long ps = sysconf(_SC_PAGESIZE);
    size_t sys_page = ps > 0 ? (size_t)ps : 4096;
    size_t page = sys_page > DSV4_FAULT_AROUND ? sys_page : DSV4_FAULT_AROUND;
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(page - 1), b = ((uintptr_t)p + n + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t lo = (uintptr_t)map, hi = ((uintptr_t)map + map_size + sys_page - 1) & ~(uintptr_t)(sys_page - 1);
    a = a < lo ? lo : a;
    b = b > hi ? hi : b;
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

unsigned long long dsv4_peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}
