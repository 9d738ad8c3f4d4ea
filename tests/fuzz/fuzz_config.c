/* libFuzzer harness for the config parser: arbitrary bytes go to dsv4_config_parse; a config that
 * parses is turned into its tensor inventory (when it is small enough to build quickly; the
 * validator already refuses absurd sizes) and the inventory's invariants and name maps are checked.
 * Any crash, leak, sanitizer report or broken invariant is a failure. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"
#include "model/inventory.h"
#include "model/names.h"

#define MAX_FUZZ_TENSORS 20000

static void check_inventory(const dsv4_config *c, const dsv4_inventory *inv)
{
    if (inv->n != dsv4_inventory_count(c))
        abort();
    for (size_t i = 0; i < inv->n; i++) {
        const dsv4_inv_tensor *t = &inv->t[i];
        if (i > 0 && strcmp(inv->t[inv->by_name[i - 1]].name, inv->t[inv->by_name[i]].name) >= 0)
            abort(); /* names sorted and unique */
        if (dsv4_inventory_find(inv, t->name) != t || (t->pair >= 0 && inv->t[t->pair].pair != (int32_t)i))
            abort();
    }
    /* Name maps on a sample: release -> HF -> release is the identity. */
    for (size_t i = 0; i < inv->n; i += 1 + inv->n / 64) {
        const dsv4_inv_tensor *t = &inv->t[i];
        dsv4_name_map m, b;
        dsv4_map_kind k = dsv4_name_to_hf(t->name, c, &m);
        if (k == DSV4_MAP_DIRECT && (dsv4_name_from_hf(m.name, &b) != DSV4_MAP_DIRECT || strcmp(b.name, t->name)))
            abort();
        if (k == DSV4_MAP_FUSED &&
            (dsv4_name_from_hf_fused(m.name, m.expert, m.row_begin, c, &b) != DSV4_MAP_DIRECT || strcmp(b.name, t->name)))
            abort();
        if (k == DSV4_MAP_NONE || (k == DSV4_MAP_NO_HF) != t->is_mtp)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dsv4_config c;
    dsv4_err e;
    if (dsv4_config_parse((const char *)data, size, "fuzz/config.json", &c, &e))
        return 0;
    if (dsv4_inventory_count(&c) > MAX_FUZZ_TENSORS)
        return 0;
    dsv4_inventory inv;
    if (dsv4_inventory_build(&c, &inv, &e) == 0) {
        check_inventory(&c, &inv);
        dsv4_inventory_free(&inv);
    }
    return 0;
}
