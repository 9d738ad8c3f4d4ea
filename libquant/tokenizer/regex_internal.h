/* Shared between the regex parser (regex_parse.c), compiler (regex_compile.c) and matcher
 * (regex_exec.c): the syntax tree, the character classes and the instruction set. */
#ifndef DSV4_TOK_REGEX_INTERNAL_H
#define DSV4_TOK_REGEX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

enum { RN_EMPTY, RN_CHAR, RN_ANY, RN_CLASS, RN_CAT, RN_ALT, RN_REPEAT, RN_ASSERT, RN_LOOK, RN_ATOMIC };
enum { RA_BOL, RA_EOL, RA_BOS, RA_EOS, RA_EOS_NL, RA_WORDB, RA_NWORDB };
enum { RQ_GREEDY, RQ_LAZY, RQ_POSSESSIVE };
enum { RC_RANGE, RC_CAT, RC_SPACE, RC_WORD, RC_DIGIT, RC_HEX };

typedef struct re_node {
    int type;
    uint32_t c;              /* RN_CHAR: the code point (folded when icase) */
    int icase;               /* RN_CHAR */
    int cls;                 /* RN_CLASS: index into the class table */
    int min, max;            /* RN_REPEAT: max -1 = unbounded */
    int quant;               /* RN_REPEAT: RQ_* */
    int kind;                /* RN_ASSERT: RA_*; RN_LOOK: 1 = negative */
    struct re_node **kids;   /* RN_CAT / RN_ALT: n kids; RN_REPEAT / RN_LOOK / RN_ATOMIC: 1 */
    int nkids, capkids;
} re_node;

typedef struct { int kind; int neg; uint32_t lo, hi; uint32_t mask; } re_item;
typedef struct { int neg, icase; re_item *items; int n, cap; } re_class;

enum { RI_CHAR, RI_CHARI, RI_ANY, RI_CLASS, RI_SPLIT, RI_JMP, RI_MATCH, RI_ASSERT, RI_LOOK,
       RI_NLOOK, RI_ATOMIC };
/* RI_SPLIT: try x, on failure y. RI_JMP: go to x. RI_LOOK / RI_NLOOK / RI_ATOMIC: the body runs
 * from pc+1 to its own RI_MATCH; then continue at x. */
typedef struct { uint8_t op; uint32_t x, y; } re_ins;

struct dsv4_re {
    re_ins *prog;
    size_t nprog;
    re_class *classes;
    int nclasses;
};

/* Parser output: the tree (nodes owned by the pool) and the classes. */
typedef struct {
    re_node **pool;
    int npool, cappool;
    re_class *classes;
    int nclasses, capclasses;
} re_parsed;

int dsv4_re_parse(const char *pattern, size_t len, re_parsed *p, re_node **root, char *why, size_t whylen);
void dsv4_re_parsed_free(re_parsed *p);
/* Emits the program for root into re (classes are moved from p). */
int dsv4_re_emit(re_parsed *p, re_node *root, struct dsv4_re *re, char *why, size_t whylen);
int dsv4_re_class_match(const re_class *c, uint32_t cp);

#endif
