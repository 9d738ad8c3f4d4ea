/* The toolchain's version, written into every artifact's provenance block (config.json
 * "dsv4_provenance") and printed by the tools. */
#ifndef DSV4_VERSION_H
#define DSV4_VERSION_H

#define DSV4_TOOL_NAME "dsv4-quant"
#define DSV4_VERSION "0.1.0"

#endif
