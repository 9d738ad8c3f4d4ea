/* The pieces of config.json parsing that fold two key styles into one value, shared by config.c.
 * Internal to libquant/model. */
#ifndef DSV4_CONFIG_PARTS_H
#define DSV4_CONFIG_PARTS_H

#include "model/config.h"
#include "model/config_json.h"

/* Per-layer compress ratios (compress_ratios and/or layer_types + compress_rates, with the legacy
 * compress_rate_csa/hca) and hash flags (num_hash_layers and/or mlp_layer_types). Needs
 * c->n_layers and c->n_mtp. */
int dsv4_config_parse_schedule(const dsv4_jctx *j, const json_t *root, dsv4_config *c);
/* RoPE: rope_head_dim (qk_rope_head_dim and/or partial_rotary_factor), the two thetas and YaRN
 * (rope_scaling and/or rope_parameters, flat or nested main/compress). Needs c->head_dim. */
int dsv4_config_parse_rope(const dsv4_jctx *j, const json_t *root, dsv4_config *c);

/* Equality of two config numbers up to a relative 1e-9 (JSON round trips of 1e-06 and the like). */
int dsv4_config_num_eq(double a, double b);

#endif
