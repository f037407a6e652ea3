/*
 * The C suite's shared harness (tests/c/harness.c): assertions, the error
 * slot every checked call reports through, and helpers for vectors, files
 * and sentinels. Each tests/c/test_<topic>.c defines run_<topic>() groups;
 * tests/c/main.c runs them all and prints the summary line
 *   c-tests: N passed, M failed
 * where N and M count assertions.
 */
#ifndef KS_TEST_HARNESS_H
#define KS_TEST_HARNESS_H

#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "keystrata.h"

/* ------------------------------------------------------------------ */
/* Assertions                                                          */
/* ------------------------------------------------------------------ */

extern atomic_int g_pass, g_fail;
/* What the current check is about (a vector's comment, ...); per thread. */
extern _Thread_local const char *g_ctx;
/* KS_TEST_QUICK=1 (valgrind): fewer thread iterations. */
extern bool g_quick;
/* A temporary directory for the run, removed at the end. */
extern char g_tmpdir[256];

bool check_(bool ok, const char *expr, const char *file, int line);
bool require_(bool ok, const char *expr, const char *file, int line);
bool expect_(ks_status got, ks_status want, bool via_err, const char *call, const char *file, int line);

/* One assertion. */
#define CHECK(c) check_((c), #c, __FILE__, __LINE__)
/* Input sanity (JSON schema, hex): counts a failure, but not a pass. */
#define REQUIRE(c) require_((c), #c, __FILE__, __LINE__)

/*
 * The error slot of the calling thread. A call checked with EXPECT or OK
 * passes E as its `ks_error **err`: the slot is set to a sentinel before
 * the call, and after it the library must have written NULL (success) or
 * an error object whose status is the one returned and whose message is
 * not empty. The object is then freed (its message kept in h_msg).
 */
extern _Thread_local ks_error *h_err;
/* The message of the last call EXPECT checked ("" after a success). */
extern _Thread_local char h_msg[512];
extern char h_unset[1];
#define H_UNSET ((ks_error *)(void *)h_unset)
#define E (&h_err)

#define EXPECT(call, want) expect_((h_err = H_UNSET, (call)), (want), true, #call, __FILE__, __LINE__)
#define OK(call) EXPECT((call), KS_OK)
/* For a status computed earlier, or a call passed err == NULL: the status only. */
#define EXPECT_ST(call, want) expect_((h_err = H_UNSET, (call)), (want), false, #call, __FILE__, __LINE__)
#define OK_ST(call) EXPECT_ST((call), KS_OK)

void group_begin(const char *name);
void group_end(const char *extra);

/* ------------------------------------------------------------------ */
/* Sentinels: outputs are pre-filled with these and must stay untouched */
/* on failure.                                                          */
/* ------------------------------------------------------------------ */

extern unsigned char g_sentinel_storage[8];
#define SENT ((void *)g_sentinel_storage)
#define SENT_LEN ((size_t)0x5e57)
ks_buffer sent_buf(void);
bool buf_untouched(ks_buffer b);

/* ------------------------------------------------------------------ */
/* Bytes, vectors, files                                               */
/* ------------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t n;
} bytes_t;

void bytes_free(bytes_t *b);
/* Decodes hex; never returns a NULL pointer (so empty inputs stay valid pointers). */
bytes_t hex(const char *s);
bytes_t base64(const char *s);
/* The buffer holds exactly want (an empty result has data == NULL). */
bool buf_eq(ks_buffer got, const uint8_t *want, size_t want_len);
bool all_zero(const uint8_t *p, size_t n);
bool all_byte(const uint8_t *p, size_t n, uint8_t b);
uint32_t be32(const uint8_t *p);

/* JSON accessors that fail the suite (not crash) on a schema surprise. */
const char *jstr(const json_t *o, const char *key);
long long jint(const json_t *o, const char *key);
json_t *jarr(const json_t *o, const char *key);
json_t *load_json(const char *dir, const char *name);

void sleep_ms(long ms);
bytes_t read_file(const char *path);
void rm_tmpdir(void);

ks_purpose purpose_of(const char *s);
ks_key_status status_of(const char *s);
/* The key ID a sealed ciphertext names (0 if too short). */
uint32_t sealed_key_id(ks_buffer b);

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

#include <pthread.h>

typedef struct {
    pthread_mutex_t mu;
    int by_kind[16];
    int total;
    ks_event events[256]; /* the first 256 */
    int n_events;
} ev_rec;

void ev_rec_init(ev_rec *r);
/* A ks_event_callback recording into the ev_rec in user_data. */
void ev_cb(const ks_event *e, void *user_data);
int ev_count(ev_rec *r, ks_event_kind k);
/* The last event of kind k, if any. */
bool ev_last(ev_rec *r, ks_event_kind k, ks_event *out);
void noop_cb(const ks_event *e, void *u);

/* ------------------------------------------------------------------ */
/* The groups, one file per topic                                      */
/* ------------------------------------------------------------------ */

void run_errors(void);             /* test_errors.c */
void run_vectors(const char *dir); /* test_vectors.c */
void run_seal(void);               /* test_seal.c */
void run_envelope(void);           /* test_envelope.c */
void run_derive(void);             /* test_derive.c */
void run_keychain(void);           /* test_keychain.c */
void run_threads(void);            /* test_threads.c */
void run_portable(const char *dir); /* test_portable.c */
void run_gateway(const char *dir); /* test_gateway.c */
void run_custom_root(void);        /* test_custom_root.c */
void run_sign(void);               /* test_sign.c */
void run_sign_more(void);          /* test_sign_more.c */
void run_stream(const char *dir);  /* test_stream.c */
void run_rewrap(void);             /* test_rewrap.c */

#endif
