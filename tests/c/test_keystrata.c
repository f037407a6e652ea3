/*
 * keystrata C ABI test suite.
 *
 *   ./test_keystrata tests/vectors
 *
 * Reads the shared vectors (tests/vectors/README.md) with jansson, checks
 * every function with hostile arguments, drives the key lifecycle, and runs
 * 8 threads against one keychain while another thread rotates it.
 * KS_TEST_QUICK=1 (used under valgrind) shortens the threaded part.
 *
 * One line per check group; the last line is exactly
 *   c-tests: N passed, M failed
 * where N and M count assertions. Exit status 0 only if M is 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "keystrata.h"

/* ------------------------------------------------------------------ */
/* Assertions                                                          */
/* ------------------------------------------------------------------ */

static atomic_int g_pass;
static atomic_int g_fail;
/* What the current check is about (a vector's comment, ...). */
static _Thread_local const char *g_ctx = "";

static bool check_(bool ok, const char *expr, const char *file, int line)
{
    if (ok) {
        atomic_fetch_add(&g_pass, 1);
    } else {
        atomic_fetch_add(&g_fail, 1);
        fprintf(stderr, "%s:%d: FAILED: %s%s%s\n", file, line, expr,
                g_ctx[0] ? "  [" : "", g_ctx[0] ? g_ctx : "");
        if (g_ctx[0])
            fprintf(stderr, "]\n");
    }
    return ok;
}
#define CHECK(c) check_((c), #c, __FILE__, __LINE__)

/* For input sanity (JSON schema, hex): counts a failure, but not a pass. */
static bool require_(bool ok, const char *expr, const char *file, int line)
{
    if (!ok) {
        atomic_fetch_add(&g_fail, 1);
        fprintf(stderr, "%s:%d: bad test input: %s%s%s\n", file, line, expr, g_ctx[0] ? "  case: " : "", g_ctx);
    }
    return ok;
}
#define REQUIRE(c) require_((c), #c, __FILE__, __LINE__)

/*
 * One assertion: `got` must equal `want`, and the thread's error message
 * must agree with it (non-empty after a failure, "" after a success).
 * Reads the message before any other ks_ call.
 */
static bool expect_(ks_status got, ks_status want, const char *call, const char *file, int line)
{
    const char *m = ks_last_error_message();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", m ? m : "(NULL)");
    bool msg_ok = m != NULL && (want == KS_OK ? msg[0] == '\0' : msg[0] != '\0');
    if (got == want && msg_ok) {
        atomic_fetch_add(&g_pass, 1);
        return true;
    }
    atomic_fetch_add(&g_fail, 1);
    fprintf(stderr, "%s:%d: FAILED: %s\n    got %s, want %s; message \"%s\"%s%s%s\n", file, line,
            call, ks_status_name((int)got), ks_status_name((int)want), msg,
            msg_ok ? "" : " (inconsistent with the status)", g_ctx[0] ? "  case: " : "", g_ctx);
    return false;
}
#define EXPECT(call, want) expect_((call), (want), #call, __FILE__, __LINE__)
#define OK(call) EXPECT((call), KS_OK)

static int g_group_pass, g_group_fail;
static const char *g_group;

static void group_begin(const char *name)
{
    g_group = name;
    g_group_pass = atomic_load(&g_pass);
    g_group_fail = atomic_load(&g_fail);
    g_ctx = "";
}

static void group_end(const char *extra)
{
    int p = atomic_load(&g_pass) - g_group_pass;
    int f = atomic_load(&g_fail) - g_group_fail;
    if (f)
        printf("FAIL %-28s %5d checks, %d failed%s\n", g_group, p + f, f, extra ? extra : "");
    else
        printf("ok   %-28s %5d checks%s\n", g_group, p, extra ? extra : "");
    fflush(stdout);
    g_ctx = "";
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static bool g_quick;

/* Sentinels: outputs are pre-filled with these and must stay untouched on failure. */
static unsigned char g_sentinel_storage[8];
#define SENT ((void *)g_sentinel_storage)
#define SENT_LEN ((size_t)0x5e57)
static ks_buffer sent_buf(void)
{
    ks_buffer b = {(uint8_t *)SENT, SENT_LEN};
    return b;
}
static bool buf_untouched(ks_buffer b)
{
    return b.data == (uint8_t *)SENT && b.len == SENT_LEN;
}

typedef struct {
    uint8_t *p;
    size_t n;
} bytes_t;

static void bytes_free(bytes_t *b)
{
    free(b->p);
    b->p = NULL;
    b->n = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes hex; never returns a NULL pointer (so empty inputs stay valid pointers). */
static bytes_t hex(const char *s)
{
    bytes_t b = {NULL, 0};
    size_t n = s ? strlen(s) : 0;
    if (!REQUIRE(s != NULL && n % 2 == 0))
        n = 0;
    b.p = malloc(n / 2 + 1);
    if (!b.p)
        abort();
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (!REQUIRE(hi >= 0 && lo >= 0))
            break;
        b.p[i] = (uint8_t)(hi << 4 | lo);
    }
    b.n = n / 2;
    return b;
}

static bytes_t base64(const char *s)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    bytes_t b = {NULL, 0};
    size_t n = s ? strlen(s) : 0;
    b.p = malloc(n / 4 * 3 + 3);
    if (!b.p)
        abort();
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=')
            break;
        const char *q = strchr(tbl, s[i]);
        if (!REQUIRE(q != NULL && s[i] != '\0'))
            break;
        acc = acc << 6 | (uint32_t)(q - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            b.p[b.n++] = (uint8_t)(acc >> bits);
        }
    }
    return b;
}

static bool buf_eq(ks_buffer got, const uint8_t *want, size_t want_len)
{
    if (got.len != want_len)
        return false;
    if (want_len == 0)
        return got.data == NULL; /* documented: an empty result has data == NULL */
    return memcmp(got.data, want, want_len) == 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* JSON accessors that fail the suite (not crash) on a schema surprise. */
static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!REQUIRE(s != NULL)) {
        fprintf(stderr, "    missing string field \"%s\"\n", key);
        return "";
    }
    return s;
}

static long long jint(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!REQUIRE(json_is_integer(v))) {
        fprintf(stderr, "    missing integer field \"%s\"\n", key);
        return 0;
    }
    return (long long)json_integer_value(v);
}

static json_t *jarr(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!REQUIRE(json_is_array(v))) {
        fprintf(stderr, "    missing array field \"%s\"\n", key);
        return NULL;
    }
    return v;
}

static json_t *load_json(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!REQUIRE(j != NULL))
        fprintf(stderr, "    %s: %s (line %d)\n", path, err.text, err.line);
    return j;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char g_tmpdir[256];

static void rm_tmpdir(void)
{
    if (!g_tmpdir[0])
        return;
    DIR *d = opendir(g_tmpdir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", g_tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(g_tmpdir);
}

static bytes_t read_file(const char *path)
{
    bytes_t b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (!REQUIRE(f != NULL))
        return b;
    size_t cap = 4096;
    b.p = malloc(cap);
    size_t r;
    while ((r = fread(b.p + b.n, 1, cap - b.n, f)) > 0) {
        b.n += r;
        if (b.n == cap) {
            cap *= 2;
            b.p = realloc(b.p, cap);
        }
    }
    fclose(f);
    return b;
}

static ks_purpose purpose_of(const char *s)
{
    return strcmp(s, "encrypt") == 0 ? KS_PURPOSE_ENCRYPT
           : strcmp(s, "derive") == 0 ? KS_PURPOSE_DERIVE
                                      : KS_PURPOSE_NONE;
}

static ks_key_status status_of(const char *s)
{
    return strcmp(s, "enabled") == 0    ? KS_KEY_ENABLED
           : strcmp(s, "disabled") == 0 ? KS_KEY_DISABLED
                                        : KS_KEY_DESTROYED;
}

/* ------------------------------------------------------------------ */
/* keystrata.json                                                      */
/* ------------------------------------------------------------------ */

/* Builds an envelope from a JSON {key_id, key_version, provider, ciphertext_hex}. */
static ks_envelope *envelope_from_json(const json_t *e)
{
    bytes_t ct = hex(jstr(e, "ciphertext_hex"));
    ks_envelope *env = NULL;
    OK(ks_envelope_new(jstr(e, "key_id"), (uint32_t)jint(e, "key_version"), jstr(e, "provider"), ct.p,
                       ct.n, &env));
    bytes_free(&ct);
    return env;
}

/* Reads a JSON string->string map into an envelope via ks_envelope_from_metadata. */
static ks_status envelope_from_metadata_json(const json_t *m, ks_envelope **out)
{
    size_t n = json_object_size(m);
    const char **names = calloc(n + 1, sizeof *names);
    const char **values = calloc(n + 1, sizeof *values);
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v)
    {
        names[i] = k;
        values[i] = json_string_value(v) ? json_string_value(v) : "";
        i++;
    }
    ks_status st = ks_envelope_from_metadata(names, values, n, out);
    free(names);
    free(values);
    return st;
}

/* Checks an envelope's metadata entries equal exactly the JSON map. */
static void check_metadata_equals(const ks_envelope *env, const json_t *m)
{
    size_t n = ks_envelope_metadata_count(env);
    CHECK(n == 4);
    CHECK(n == json_object_size(m));
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL, *value = NULL;
        if (!OK(ks_envelope_metadata_entry(env, i, &name, &value)))
            continue;
        const char *want = json_string_value(json_object_get(m, name));
        CHECK(want != NULL && strcmp(want, value) == 0);
    }
}

static void check_envelope_equals(const ks_envelope *env, const json_t *e)
{
    CHECK(strcmp(ks_envelope_key_id(env), jstr(e, "key_id")) == 0);
    CHECK(ks_envelope_key_version(env) == (uint32_t)jint(e, "key_version"));
    CHECK(strcmp(ks_envelope_provider(env), jstr(e, "provider")) == 0);
    bytes_t ct = hex(jstr(e, "ciphertext_hex"));
    size_t len = 0;
    const uint8_t *p = ks_envelope_ciphertext(env, &len);
    CHECK(len == ct.n && p != NULL && memcmp(p, ct.p, ct.n) == 0);
    bytes_free(&ct);
}

typedef struct {
    int unseal, decrypt, unwrap, metadata, derive_origin_key, derive, invalid;
} ks_counts;

/* Every valid and invalid case of keychain `k` against `kc`. */
static void run_keychain_cases(const ks_keychain *kc, const json_t *k, ks_counts *n)
{
    size_t i;
    json_t *c;
    char ctx[256];

    json_array_foreach(jarr(k, "unseal"), i, c)
    {
        snprintf(ctx, sizeof ctx, "unseal[%zu] %s", i, jstr(c, "comment"));
        g_ctx = ctx;
        bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex")),
                pt = hex(jstr(c, "plaintext_hex"));
        CHECK(ct.n >= 5 && be32(ct.p + 1) == (uint32_t)jint(c, "key_id"));
        ks_buffer out = sent_buf();
        if (OK(ks_keychain_unseal(kc, ct.p, ct.n, aad.p, aad.n, &out)))
            CHECK(buf_eq(out, pt.p, pt.n));
        ks_buffer_free(&out);
        bytes_free(&ct), bytes_free(&aad), bytes_free(&pt);
        n->unseal++;
    }

    json_array_foreach(jarr(k, "decrypt"), i, c)
    {
        snprintf(ctx, sizeof ctx, "decrypt[%zu] %s", i, jstr(c, "comment"));
        g_ctx = ctx;
        bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex")),
                pt = hex(jstr(c, "plaintext_hex"));
        CHECK(ct.n >= 9 && be32(ct.p + 5) == (uint32_t)jint(c, "key_id"));
        ks_buffer out = sent_buf();
        if (OK(ks_keychain_decrypt(kc, ct.p, ct.n, aad.p, aad.n, &out)))
            CHECK(buf_eq(out, pt.p, pt.n));
        ks_buffer_free(&out);
        bytes_free(&ct), bytes_free(&aad), bytes_free(&pt);
        n->decrypt++;
    }

    json_array_foreach(jarr(k, "unwrap"), i, c)
    {
        snprintf(ctx, sizeof ctx, "unwrap[%zu] %s", i, jstr(c, "comment"));
        g_ctx = ctx;
        bytes_t context = hex(jstr(c, "context_hex")), key = hex(jstr(c, "key_hex"));
        const json_t *ej = json_object_get(c, "envelope"), *mj = json_object_get(c, "metadata");
        CHECK(json_is_object(ej) && json_is_object(mj));
        /* From the four fields; writing it must give exactly `metadata`. */
        ks_envelope *env = envelope_from_json(ej);
        if (env) {
            check_metadata_equals(env, mj);
            ks_buffer out = sent_buf();
            if (OK(ks_keychain_unwrap_key(kc, env, context.p, context.n, &out)))
                CHECK(buf_eq(out, key.p, key.n));
            ks_buffer_free(&out);
            ks_envelope_free(env);
        }
        n->unwrap++;
        /* From the metadata map; reading it must give `envelope`. */
        ks_envelope *menv = NULL;
        if (OK(envelope_from_metadata_json(mj, &menv))) {
            check_envelope_equals(menv, ej);
            ks_buffer out = sent_buf();
            if (OK(ks_keychain_unwrap_key(kc, menv, context.p, context.n, &out)))
                CHECK(buf_eq(out, key.p, key.n));
            ks_buffer_free(&out);
        }
        ks_envelope_free(menv);
        n->metadata++;
        bytes_free(&context), bytes_free(&key);
    }

    json_array_foreach(jarr(k, "derive_origin_key"), i, c)
    {
        snprintf(ctx, sizeof ctx, "derive_origin_key[%zu] %s", i, jstr(c, "comment"));
        g_ctx = ctx;
        const char *origin = jstr(c, "origin"), *instance = jstr(c, "instance");
        const char *es = jstr(c, "epoch");
        char *end = NULL;
        errno = 0;
        unsigned long long epoch = strtoull(es, &end, 10);
        CHECK(errno == 0 && end && *end == '\0' && es[0] != '-');
        bytes_t key = hex(jstr(c, "key_hex"));
        CHECK(key.n == 32);
        ks_buffer out = sent_buf();
        if (OK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)origin, strlen(origin),
                                             (const uint8_t *)instance, strlen(instance),
                                             (uint64_t)epoch, &out)))
            CHECK(buf_eq(out, key.p, key.n));
        ks_buffer_free(&out);
        bytes_free(&key);
        n->derive_origin_key++;
    }

    json_array_foreach(jarr(k, "derive"), i, c)
    {
        snprintf(ctx, sizeof ctx, "derive[%zu] %s", i, jstr(c, "comment"));
        g_ctx = ctx;
        bytes_t info = hex(jstr(c, "info_hex")), okm = hex(jstr(c, "okm_hex"));
        ks_buffer out = sent_buf();
        if (OK(ks_keychain_derive(kc, 0, info.p, info.n, (size_t)jint(c, "length"), &out)))
            CHECK(buf_eq(out, okm.p, okm.n));
        ks_buffer_free(&out);
        bytes_free(&info), bytes_free(&okm);
        n->derive++;
    }

    json_array_foreach(jarr(k, "invalid"), i, c)
    {
        snprintf(ctx, sizeof ctx, "invalid[%zu] %s: %s", i, jstr(c, "op"), jstr(c, "comment"));
        g_ctx = ctx;
        const char *op = jstr(c, "op");
        ks_status want = (ks_status)jint(c, "error_code");
        CHECK(want >= KS_ERR_INVALID_INPUT && want <= KS_ERR_INTERNAL);
        CHECK(strlen(ks_status_name((int)want)) > 7);
        ks_buffer out = sent_buf();
        if (strcmp(op, "unseal") == 0 || strcmp(op, "decrypt") == 0) {
            bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex"));
            ks_status st = op[0] == 'u' ? ks_keychain_unseal(kc, ct.p, ct.n, aad.p, aad.n, &out)
                                        : ks_keychain_decrypt(kc, ct.p, ct.n, aad.p, aad.n, &out);
            EXPECT(st, want);
            bytes_free(&ct), bytes_free(&aad);
        } else if (strcmp(op, "unwrap") == 0) {
            bytes_t context = hex(jstr(c, "context_hex"));
            ks_envelope *env = envelope_from_json(json_object_get(c, "envelope"));
            if (env)
                EXPECT(ks_keychain_unwrap_key(kc, env, context.p, context.n, &out), want);
            ks_envelope_free(env);
            bytes_free(&context);
        } else if (strcmp(op, "derive") == 0) {
            bytes_t info = hex(jstr(c, "info_hex"));
            EXPECT(ks_keychain_derive(kc, 0, info.p, info.n, (size_t)jint(c, "length"), &out), want);
            bytes_free(&info);
        } else if (strcmp(op, "envelope_from_metadata") == 0) {
            ks_envelope *env = SENT;
            EXPECT(envelope_from_metadata_json(json_object_get(c, "metadata"), &env), want);
            CHECK(env == SENT);
        } else {
            fprintf(stderr, "unknown invalid op \"%s\"\n", op);
            CHECK(!"known invalid op");
        }
        CHECK(buf_untouched(out));
        n->invalid++;
    }
    g_ctx = "";
}

static void check_keys_listing(const ks_keychain *kc, const json_t *keys)
{
    size_t want = json_array_size(keys), count = 0;
    CHECK(want > 0);
    OK(ks_keychain_key_count(kc, &count));
    CHECK(count == want);
    ks_key_info infos[16];
    count = 0;
    if (!OK(ks_keychain_keys(kc, infos, 16, &count)) || !CHECK(count == want))
        return;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        CHECK(infos[i].key_id == (uint32_t)jint(k, "key_id"));
        CHECK(infos[i].version == (uint32_t)jint(k, "version"));
        CHECK(infos[i].purpose == purpose_of(jstr(k, "purpose")));
        CHECK(infos[i].status == status_of(jstr(k, "status")));
        CHECK(infos[i].primary == json_is_true(json_object_get(k, "primary")));
        ks_key_info one;
        if (OK(ks_keychain_key_info(kc, i, &one)))
            CHECK(one.key_id == infos[i].key_id && one.status == infos[i].status);
    }
}

static void group_keystrata_vectors(const char *dir)
{
    group_begin("vectors/keystrata.json");
    ks_counts n = {0};
    json_t *j = load_json(dir, "keystrata.json");
    if (!j) {
        group_end(NULL);
        return;
    }
    CHECK(jint(j, "keychain_format_version") == 1);
    const json_t *k = json_object_get(j, "keychain");
    CHECK(json_is_object(k));

    /* The age-saved keychain, loaded with its identity. */
    const char *ident = jstr(k, "age_identity"), *recip = jstr(k, "age_recipient");
    ks_root *root = SENT;
    OK(ks_root_age_new(&ident, 1, NULL, 0, &root));
    CHECK(root != SENT && root != NULL);
    ks_buffer rb = sent_buf();
    if (OK(ks_root_age_recipient(root, 0, &rb)))
        CHECK(buf_eq(rb, (const uint8_t *)recip, strlen(recip)));
    ks_buffer_free(&rb);

    bytes_t saved = base64(jstr(k, "saved_age_base64"));
    CHECK(saved.n > 22 && memcmp(saved.p, "age-encryption.org/v1\n", 22) == 0);
    ks_keychain *kc = SENT;
    if (OK(ks_keychain_load(saved.p, saved.n, root, &kc))) {
        check_keys_listing(kc, jarr(k, "keys"));
        run_keychain_cases(kc, k, &n);

        /* The same again after a save/load round trip through C. */
        ks_buffer again = sent_buf();
        ks_keychain *kc2 = NULL;
        if (OK(ks_keychain_save(kc, root, &again)) &&
            OK(ks_keychain_load(again.data, again.len, root, &kc2))) {
            check_keys_listing(kc2, jarr(k, "keys"));
            ks_counts n2 = {0};
            run_keychain_cases(kc2, k, &n2);
            CHECK(n2.invalid == n.invalid && n2.unseal == n.unseal);
        }
        ks_buffer_free(&again);
        ks_keychain_free(kc2);
        ks_keychain_free(kc);
    }

    /* Another identity does not open it; a truncated file does not load. */
    ks_root *other = NULL;
    OK(ks_root_age_generate(&other));
    kc = SENT;
    EXPECT(ks_keychain_load(saved.p, saved.n, other, &kc), KS_ERR_AUTHENTICATION);
    CHECK(kc == SENT);
    EXPECT(ks_keychain_load(saved.p, saved.n - 1, root, &kc), KS_ERR_AUTHENTICATION);
    EXPECT(ks_keychain_load(saved.p, 10, root, &kc), KS_ERR_FORMAT);
    EXPECT(ks_keychain_load(NULL, 0, root, &kc), KS_ERR_FORMAT);
    CHECK(kc == SENT);
    /* Flip one byte in the middle of the payload. */
    saved.p[saved.n / 2 + 40 < saved.n ? saved.n / 2 + 40 : saved.n - 1] ^= 0x01;
    EXPECT(ks_keychain_load(saved.p, saved.n, root, &kc), KS_ERR_AUTHENTICATION);
    CHECK(kc == SENT);
    ks_root_free(other);
    ks_root_free(root);
    bytes_free(&saved);

    /* The passphrase-saved keychain. */
    const json_t *p = json_object_get(j, "saved_passphrase");
    const char *pass = jstr(p, "passphrase");
    ks_root *proot = NULL;
    OK(ks_root_passphrase_new((const uint8_t *)pass, strlen(pass), (uint8_t)jint(p, "work_factor"), &proot));
    bytes_t psaved = base64(jstr(p, "saved_age_base64"));
    kc = NULL;
    if (OK(ks_keychain_load(psaved.p, psaved.n, proot, &kc))) {
        size_t i;
        json_t *c;
        char ctx[256];
        json_array_foreach(jarr(p, "unseal"), i, c)
        {
            snprintf(ctx, sizeof ctx, "saved_passphrase.unseal[%zu] %s", i, jstr(c, "comment"));
            g_ctx = ctx;
            bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex")),
                    pt = hex(jstr(c, "plaintext_hex"));
            ks_buffer out = sent_buf();
            if (OK(ks_keychain_unseal(kc, ct.p, ct.n, aad.p, aad.n, &out)))
                CHECK(buf_eq(out, pt.p, pt.n));
            ks_buffer_free(&out);
            bytes_free(&ct), bytes_free(&aad), bytes_free(&pt);
            n.unseal++;
        }
        g_ctx = "";
        ks_keychain_free(kc);
    }
    ks_root *wrongp = NULL;
    OK(ks_root_passphrase_new((const uint8_t *)"not it", 6, 10, &wrongp));
    kc = SENT;
    EXPECT(ks_keychain_load(psaved.p, psaved.n, wrongp, &kc), KS_ERR_AUTHENTICATION);
    CHECK(kc == SENT);
    ks_root_free(wrongp);
    ks_root_free(proot);
    bytes_free(&psaved);
    json_decref(j);

    int total = n.unseal + n.decrypt + n.unwrap + n.metadata + n.derive_origin_key + n.derive + n.invalid;
    CHECK(n.unseal > 0 && n.decrypt > 0 && n.unwrap > 0 && n.derive_origin_key > 0 && n.derive > 0 &&
          n.invalid > 0);
    char extra[256];
    snprintf(extra, sizeof extra,
             "  (%d cases: unseal %d, decrypt %d, unwrap %d, metadata %d, derive_origin_key %d, "
             "derive %d, invalid %d)",
             total, n.unseal, n.decrypt, n.unwrap, n.metadata, n.derive_origin_key, n.derive, n.invalid);
    group_end(extra);
}

/* ------------------------------------------------------------------ */
/* tink.json                                                           */
/* ------------------------------------------------------------------ */

static void group_tink_vectors(const char *dir)
{
    group_begin("vectors/tink.json");
    int n_aead = 0, n_env = 0, n_fail = 0, n_unsup = 0, n_keysets = 0;
    json_t *j = load_json(dir, "tink.json");
    if (!j) {
        group_end(NULL);
        return;
    }
    size_t i, x;
    json_t *ks, *c;
    char ctx[256];
    json_array_foreach(jarr(j, "keysets"), i, ks)
    {
        const char *name = jstr(ks, "name");
        const char *keyset = jstr(ks, "keyset_json");
        ks_keychain *kc = SENT;
        snprintf(ctx, sizeof ctx, "keyset %s", name);
        g_ctx = ctx;
        if (!OK(ks_keychain_import_tink_cleartext((const uint8_t *)keyset, strlen(keyset), &kc)))
            continue;
        n_keysets++;
        ks_key_info pi;
        if (OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &pi)))
            CHECK(pi.key_id == (uint32_t)(unsigned long long)jint(ks, "primary_key_id"));
        /* Imported, then exported and imported again: same answers. */
        ks_buffer exported = sent_buf();
        ks_keychain *kc2 = NULL;
        if (OK(ks_keychain_export_tink_cleartext(kc, &exported)))
            OK(ks_keychain_import_tink_cleartext(exported.data, exported.len, &kc2));
        ks_buffer_free(&exported);
        const ks_keychain *both[2] = {kc, kc2};
        for (int w = 0; w < 2; w++) {
            if (!both[w])
                continue;
            json_array_foreach(jarr(ks, "aead"), x, c)
            {
                snprintf(ctx, sizeof ctx, "%s aead[%zu] %s%s", name, x, jstr(c, "comment"),
                         w ? " (re-imported)" : "");
                bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex")),
                        pt = hex(jstr(c, "plaintext_hex"));
                CHECK(ct.n >= 5 && ct.p[0] == 1 &&
                      be32(ct.p + 1) == (uint32_t)(unsigned long long)jint(c, "key_id"));
                ks_buffer out = sent_buf();
                if (OK(ks_keychain_unseal(both[w], ct.p, ct.n, aad.p, aad.n, &out)))
                    CHECK(buf_eq(out, pt.p, pt.n));
                ks_buffer_free(&out);
                bytes_free(&ct), bytes_free(&aad), bytes_free(&pt);
                n_aead += w == 0;
            }
            json_array_foreach(jarr(ks, "envelope"), x, c)
            {
                snprintf(ctx, sizeof ctx, "%s envelope[%zu] %s%s", name, x, jstr(c, "comment"),
                         w ? " (re-imported)" : "");
                bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex")),
                        pt = hex(jstr(c, "plaintext_hex"));
                ks_buffer out = sent_buf();
                if (OK(ks_keychain_decrypt(both[w], ct.p, ct.n, aad.p, aad.n, &out)))
                    CHECK(buf_eq(out, pt.p, pt.n));
                ks_buffer_free(&out);
                bytes_free(&ct), bytes_free(&aad), bytes_free(&pt);
                n_env += w == 0;
            }
        }
        json_array_foreach(jarr(ks, "aead_must_fail"), x, c)
        {
            snprintf(ctx, sizeof ctx, "%s aead_must_fail[%zu] %s", name, x, jstr(c, "comment"));
            bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex"));
            ks_buffer out = sent_buf();
            EXPECT(ks_keychain_unseal(kc, ct.p, ct.n, aad.p, aad.n, &out), KS_ERR_KEY_DISABLED);
            CHECK(buf_untouched(out));
            bytes_free(&ct), bytes_free(&aad);
            n_fail++;
        }
        ks_keychain_free(kc2);
        ks_keychain_free(kc);
    }
    json_array_foreach(jarr(j, "unsupported"), i, c)
    {
        snprintf(ctx, sizeof ctx, "unsupported %s", jstr(c, "name"));
        g_ctx = ctx;
        const char *keyset = jstr(c, "keyset_json");
        ks_keychain *kc = SENT;
        EXPECT(ks_keychain_import_tink_cleartext((const uint8_t *)keyset, strlen(keyset), &kc),
               KS_ERR_UNSUPPORTED);
        CHECK(kc == SENT);
        n_unsup++;
    }
    g_ctx = "";
    /* Not a keyset at all. */
    ks_keychain *kc = SENT;
    EXPECT(ks_keychain_import_tink_cleartext((const uint8_t *)"{\"x\":1}", 7, &kc), KS_ERR_FORMAT);
    EXPECT(ks_keychain_import_tink_cleartext((const uint8_t *)"\xff\xfe", 2, &kc), KS_ERR_INVALID_INPUT);
    CHECK(kc == SENT);
    json_decref(j);
    CHECK(n_keysets > 0 && n_aead > 0 && n_env > 0 && n_fail > 0 && n_unsup > 0);
    char extra[200];
    snprintf(extra, sizeof extra, "  (%d cases: %d keysets, aead %d, envelope %d, aead_must_fail %d, unsupported %d)",
             n_keysets + n_aead + n_env + n_fail + n_unsup, n_keysets, n_aead, n_env, n_fail, n_unsup);
    group_end(extra);
}

/* ------------------------------------------------------------------ */
/* Wycheproof                                                          */
/* ------------------------------------------------------------------ */

static void group_wycheproof_aes_gcm(const char *dir)
{
    group_begin("wycheproof/aes_gcm");
    int n_valid = 0, n_invalid = 0, n_refused = 0;
    json_t *j = load_json(dir, "wycheproof/aes_gcm_test.json");
    if (!j) {
        group_end(NULL);
        return;
    }
    size_t gi, ti;
    json_t *g, *t;
    char ctx[128];
    json_array_foreach(jarr(j, "testGroups"), gi, g)
    {
        long long key_size = jint(g, "keySize"), iv_size = jint(g, "ivSize"), tag_size = jint(g, "tagSize");
        bool ours = key_size == 256 && iv_size == 96 && tag_size == 128;
        json_array_foreach(jarr(g, "tests"), ti, t)
        {
            snprintf(ctx, sizeof ctx, "tcId %lld (%s)", jint(t, "tcId"), jstr(t, "comment"));
            g_ctx = ctx;
            const char *result = jstr(t, "result");
            CHECK(strcmp(result, "valid") == 0 || strcmp(result, "invalid") == 0);
            bool valid = strcmp(result, "valid") == 0;
            bytes_t key = hex(jstr(t, "key")), iv = hex(jstr(t, "iv")), aad = hex(jstr(t, "aad")),
                    msg = hex(jstr(t, "msg")), ct = hex(jstr(t, "ct")), tag = hex(jstr(t, "tag"));
            bytes_t sealed = {malloc(ct.n + tag.n + 1), ct.n + tag.n};
            memcpy(sealed.p, ct.p, ct.n);
            memcpy(sealed.p + ct.n, tag.p, tag.n);
            ks_buffer enc = sent_buf(), dec = sent_buf();
            if (ours) {
                if (valid) {
                    if (OK(ks_hazmat_aes256gcm_encrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, msg.p, msg.n, &enc)))
                        CHECK(buf_eq(enc, sealed.p, sealed.n));
                    if (OK(ks_hazmat_aes256gcm_decrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, sealed.p,
                                                      sealed.n, &dec)))
                        CHECK(buf_eq(dec, msg.p, msg.n));
                    n_valid++;
                } else {
                    EXPECT(ks_hazmat_aes256gcm_decrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, sealed.p,
                                                      sealed.n, &dec),
                           KS_ERR_AUTHENTICATION);
                    CHECK(buf_untouched(dec));
                    /* And encrypting msg never yields the invalid ct||tag. */
                    if (OK(ks_hazmat_aes256gcm_encrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, msg.p, msg.n, &enc)))
                        CHECK(!buf_eq(enc, sealed.p, sealed.n));
                    n_invalid++;
                }
            } else {
                /* Outside keystrata's format (key not 256 bits, IV not 96): refused. */
                EXPECT(ks_hazmat_aes256gcm_encrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, msg.p, msg.n, &enc),
                       KS_ERR_INVALID_INPUT);
                EXPECT(ks_hazmat_aes256gcm_decrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, sealed.p, sealed.n,
                                                  &dec),
                       KS_ERR_INVALID_INPUT);
                CHECK(buf_untouched(enc) && buf_untouched(dec));
                n_refused++;
            }
            if (!buf_untouched(enc))
                ks_buffer_free(&enc);
            if (!buf_untouched(dec))
                ks_buffer_free(&dec);
            bytes_free(&key), bytes_free(&iv), bytes_free(&aad), bytes_free(&msg), bytes_free(&ct),
                bytes_free(&tag), bytes_free(&sealed);
        }
    }
    g_ctx = "";
    CHECK(n_valid + n_invalid + n_refused == jint(j, "numberOfTests"));
    json_decref(j);
    CHECK(n_valid > 0 && n_invalid > 0);
    char extra[160];
    snprintf(extra, sizeof extra, "  (%d cases: AES-256/96-bit IV valid %d, invalid %d; refused %d)",
             n_valid + n_invalid + n_refused, n_valid, n_invalid, n_refused);
    group_end(extra);
}

static void group_wycheproof_hkdf(const char *dir)
{
    group_begin("wycheproof/hkdf_sha256");
    int n_valid = 0, n_invalid = 0;
    json_t *j = load_json(dir, "wycheproof/hkdf_sha256_test.json");
    if (!j) {
        group_end(NULL);
        return;
    }
    size_t gi, ti;
    json_t *g, *t;
    char ctx[128];
    json_array_foreach(jarr(j, "testGroups"), gi, g)
    {
        json_array_foreach(jarr(g, "tests"), ti, t)
        {
            snprintf(ctx, sizeof ctx, "tcId %lld (%s)", jint(t, "tcId"), jstr(t, "comment"));
            g_ctx = ctx;
            const char *result = jstr(t, "result");
            CHECK(strcmp(result, "valid") == 0 || strcmp(result, "invalid") == 0);
            bytes_t ikm = hex(jstr(t, "ikm")), salt = hex(jstr(t, "salt")), info = hex(jstr(t, "info")),
                    okm = hex(jstr(t, "okm"));
            size_t size = (size_t)jint(t, "size");
            /* An empty salt is passed as NULL: "no salt". */
            const uint8_t *sp = salt.n ? salt.p : NULL;
            ks_buffer out = sent_buf();
            if (strcmp(result, "valid") == 0) {
                if (OK(ks_hazmat_hkdf_sha256(sp, salt.n, ikm.p, ikm.n, info.p, info.n, size, &out)))
                    CHECK(buf_eq(out, okm.p, okm.n));
                ks_buffer_free(&out);
                n_valid++;
            } else {
                EXPECT(ks_hazmat_hkdf_sha256(sp, salt.n, ikm.p, ikm.n, info.p, info.n, size, &out),
                       KS_ERR_INVALID_INPUT);
                CHECK(buf_untouched(out));
                n_invalid++;
            }
            bytes_free(&ikm), bytes_free(&salt), bytes_free(&info), bytes_free(&okm);
        }
    }
    g_ctx = "";
    CHECK(n_valid + n_invalid == jint(j, "numberOfTests"));
    json_decref(j);
    CHECK(n_valid > 0 && n_invalid > 0);
    char extra[96];
    snprintf(extra, sizeof extra, "  (%d cases: valid %d, invalid %d)", n_valid + n_invalid, n_valid, n_invalid);
    group_end(extra);
}

/* ------------------------------------------------------------------ */
/* Status names, messages, version, buffers                           */
/* ------------------------------------------------------------------ */

static void *fail_in_thread(void *arg)
{
    (void)arg;
    ks_keychain *kc = SENT;
    ks_status st = ks_keychain_generate(NULL, NULL);
    const char *m = ks_last_error_message();
    bool ok = st == KS_ERR_NULL_ARGUMENT && m[0] != '\0' && kc == SENT;
    return ok ? (void *)1 : NULL;
}

static void group_status_and_messages(void)
{
    group_begin("status names, messages");
    static const struct {
        int v;
        const char *name;
    } names[] = {
        {KS_OK, "KS_OK"},
        {KS_ERR_INVALID_INPUT, "KS_ERR_INVALID_INPUT"},
        {KS_ERR_AUTHENTICATION, "KS_ERR_AUTHENTICATION"},
        {KS_ERR_UNKNOWN_KEY, "KS_ERR_UNKNOWN_KEY"},
        {KS_ERR_KEY_DISABLED, "KS_ERR_KEY_DISABLED"},
        {KS_ERR_KEY_DESTROYED, "KS_ERR_KEY_DESTROYED"},
        {KS_ERR_POLICY, "KS_ERR_POLICY"},
        {KS_ERR_UNSUPPORTED, "KS_ERR_UNSUPPORTED"},
        {KS_ERR_BACKEND, "KS_ERR_BACKEND"},
        {KS_ERR_UNAVAILABLE, "KS_ERR_UNAVAILABLE"},
        {KS_ERR_FORMAT, "KS_ERR_FORMAT"},
        {KS_ERR_IO, "KS_ERR_IO"},
        {KS_ERR_INTERNAL, "KS_ERR_INTERNAL"},
        {KS_ERR_NULL_ARGUMENT, "KS_ERR_NULL_ARGUMENT"},
        {KS_ERR_BUFFER_TOO_SMALL, "KS_ERR_BUFFER_TOO_SMALL"},
    };
    /* The numbers are a stable ABI. */
    CHECK(KS_OK == 0 && KS_ERR_INVALID_INPUT == 1 && KS_ERR_INTERNAL == 12 && KS_ERR_NULL_ARGUMENT == 100 &&
          KS_ERR_BUFFER_TOO_SMALL == 101);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        g_ctx = names[i].name;
        const char *s = ks_status_name(names[i].v);
        CHECK(s != NULL && strcmp(s, names[i].name) == 0);
    }
    g_ctx = "";
    const int garbage[] = {-1, 13, 14, 99, 102, 1000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        const char *s = ks_status_name(garbage[i]);
        CHECK(s != NULL && strcmp(s, "KS_ERR_UNKNOWN_STATUS") == 0);
    }
    CHECK(ks_version() != NULL && strcmp(ks_version(), KEYSTRATA_VERSION) == 0);

    /* "" after a success, a message after a failure, "" again after a success. */
    ks_keychain *kc = NULL;
    OK(ks_keychain_generate(NULL, &kc));
    CHECK(strcmp(ks_last_error_message(), "") == 0);
    ks_buffer out = sent_buf();
    EXPECT(ks_keychain_unseal(kc, (const uint8_t *)"x", 1, NULL, 0, &out), KS_ERR_FORMAT);
    CHECK(strlen(ks_last_error_message()) > 0);
    uint32_t v = 0;
    OK(ks_keychain_active_key_version(kc, &v));
    CHECK(v == 1 && ks_last_error_message()[0] == '\0');
    /* The message is per thread: a failure elsewhere does not show here. */
    pthread_t th;
    void *res = NULL;
    CHECK(pthread_create(&th, NULL, fail_in_thread, NULL) == 0);
    CHECK(pthread_join(th, &res) == 0);
    CHECK(res == (void *)1);
    CHECK(ks_last_error_message()[0] == '\0');
    /* A message never repeats an identity it could not parse. */
    const char *bad_id = "AGE-SECRET-KEY-1SECRETSECRETSECRETSECRETSECRET";
    ks_root *r = SENT;
    EXPECT(ks_root_age_new(&bad_id, 1, NULL, 0, &r), KS_ERR_INVALID_INPUT);
    CHECK(strstr(ks_last_error_message(), "SECRETSECRET") == NULL);
    CHECK(r == SENT);

    /* Buffers: free NULL, free twice, empty results. */
    ks_buffer_free(NULL);
    ks_buffer empty = {NULL, 0};
    ks_buffer_free(&empty);
    CHECK(empty.data == NULL && empty.len == 0);
    ks_buffer sealed = sent_buf();
    if (OK(ks_keychain_seal(kc, (const uint8_t *)"abc", 3, NULL, 0, &sealed))) {
        CHECK(sealed.len == 3 + 33);
        ks_buffer_free(&sealed);
        CHECK(sealed.data == NULL && sealed.len == 0);
        ks_buffer_free(&sealed);
        CHECK(sealed.data == NULL && sealed.len == 0);
    }
    /* Empty plaintext, NULL with length 0: round trip to an empty buffer. */
    ks_buffer s2 = sent_buf(), o2 = sent_buf();
    if (OK(ks_keychain_seal(kc, NULL, 0, NULL, 0, &s2)) && CHECK(s2.len == 33) &&
        OK(ks_keychain_unseal(kc, s2.data, s2.len, NULL, 0, &o2)))
        CHECK(o2.data == NULL && o2.len == 0);
    ks_buffer_free(&s2);
    ks_buffer_free(&o2);
    /* Every _free accepts NULL. */
    ks_keychain_free(NULL);
    ks_root_free(NULL);
    ks_envelope_free(NULL);
    CHECK(1);
    ks_keychain_free(kc);
    group_end(NULL);
}

/* ------------------------------------------------------------------ */
/* Hostile arguments                                                   */
/* ------------------------------------------------------------------ */

static void noop_cb(const ks_event *e, void *u)
{
    (void)e;
    (void)u;
}

static void group_hostile(void)
{
    group_begin("hostile arguments");
    const size_t HUGE = (size_t)-1;
    const uint8_t small[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ks_keychain *kc = NULL;
    OK(ks_keychain_generate(NULL, &kc));
    ks_root *root = NULL;
    OK(ks_root_age_generate(&root));
    ks_buffer out = sent_buf();
    ks_keychain *kout = SENT;
    ks_root *rout = SENT;
    ks_envelope *eout = SENT;

    ks_buffer sealed = {NULL, 0}, encd = {NULL, 0};
    OK(ks_keychain_seal(kc, (const uint8_t *)"secret", 6, (const uint8_t *)"aad", 3, &sealed));
    OK(ks_keychain_encrypt(kc, (const uint8_t *)"document", 8, (const uint8_t *)"aad", 3, &encd));
    ks_envelope *env = NULL;
    uint8_t dek[32];
    memset(dek, 0x42, sizeof dek);
    OK(ks_keychain_wrap_key(kc, dek, 32, (const uint8_t *)"ctx", 3, &env));

    /* --- seal / unseal / encrypt / decrypt share one shape --- */
    typedef ks_status (*bytes_fn)(const ks_keychain *, const uint8_t *, size_t, const uint8_t *, size_t, ks_buffer *);
    const struct {
        const char *name;
        bytes_fn f;
        const ks_buffer *valid;
    } ops[] = {
        {"seal", ks_keychain_seal, NULL},
        {"unseal", ks_keychain_unseal, &sealed},
        {"encrypt", ks_keychain_encrypt, NULL},
        {"decrypt", ks_keychain_decrypt, &encd},
    };
    for (size_t i = 0; i < 4; i++) {
        g_ctx = ops[i].name;
        const uint8_t *in = ops[i].valid ? ops[i].valid->data : small;
        size_t in_len = ops[i].valid ? ops[i].valid->len : sizeof small;
        const uint8_t *aad = (const uint8_t *)"aad";
        EXPECT(ops[i].f(NULL, in, in_len, aad, 3, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ops[i].f(kc, NULL, in_len, aad, 3, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ops[i].f(kc, in, in_len, NULL, 3, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ops[i].f(kc, in, in_len, aad, 3, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ops[i].f(kc, in, HUGE, aad, 3, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ops[i].f(kc, in, in_len, aad, HUGE, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ops[i].f(kc, NULL, HUGE, aad, 3, &out), KS_ERR_NULL_ARGUMENT);
        CHECK(buf_untouched(out));
        /* The valid call works (NULL aad with length 0 is the empty aad). */
        ks_buffer ok = sent_buf();
        if (ops[i].valid) {
            EXPECT(ops[i].f(kc, in, in_len, NULL, 0, &ok), KS_ERR_AUTHENTICATION); /* wrong aad */
            CHECK(buf_untouched(ok));
            if (OK(ops[i].f(kc, in, in_len, aad, 3, &ok)))
                ks_buffer_free(&ok);
        } else if (OK(ops[i].f(kc, in, in_len, NULL, 0, &ok))) {
            ks_buffer_free(&ok);
        }
    }
    g_ctx = "";

    /* --- truncated and tampered ciphertexts: every length, every byte --- */
    for (size_t len = 0; len < sealed.len; len++) {
        ks_buffer o = sent_buf();
        EXPECT(ks_keychain_unseal(kc, sealed.data, len, (const uint8_t *)"aad", 3, &o),
               len < 33 ? KS_ERR_FORMAT : KS_ERR_AUTHENTICATION);
        CHECK(buf_untouched(o));
    }
    for (size_t pos = 0; pos < sealed.len; pos++) {
        uint8_t *t = malloc(sealed.len);
        memcpy(t, sealed.data, sealed.len);
        t[pos] ^= 0x80;
        ks_buffer o = sent_buf();
        /* prefix byte -> Format; key ID -> no such key; the rest -> Authentication */
        EXPECT(ks_keychain_unseal(kc, t, sealed.len, (const uint8_t *)"aad", 3, &o),
               pos == 0 ? KS_ERR_FORMAT : pos < 5 ? KS_ERR_UNKNOWN_KEY : KS_ERR_AUTHENTICATION);
        CHECK(buf_untouched(o));
        free(t);
    }
    for (size_t len = 0; len < encd.len; len++) {
        ks_buffer o = sent_buf();
        ks_status st = ks_keychain_decrypt(kc, encd.data, len, (const uint8_t *)"aad", 3, &o);
        CHECK(st == KS_ERR_FORMAT || st == KS_ERR_AUTHENTICATION);
        CHECK(buf_untouched(o));
    }
    for (size_t pos = 0; pos < encd.len; pos++) {
        uint8_t *t = malloc(encd.len);
        memcpy(t, encd.data, encd.len);
        t[pos] ^= 0x01;
        ks_buffer o = sent_buf();
        ks_status st = ks_keychain_decrypt(kc, t, encd.len, (const uint8_t *)"aad", 3, &o);
        CHECK(st == KS_ERR_FORMAT || st == KS_ERR_AUTHENTICATION || st == KS_ERR_UNKNOWN_KEY);
        CHECK(buf_untouched(o));
        free(t);
    }
    /* A ciphertext naming a key this keychain does not have. */
    {
        ks_keychain *other = NULL;
        OK(ks_keychain_generate(NULL, &other));
        ks_buffer o = sent_buf();
        EXPECT(ks_keychain_unseal(other, sealed.data, sealed.len, (const uint8_t *)"aad", 3, &o), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_keychain_decrypt(other, encd.data, encd.len, (const uint8_t *)"aad", 3, &o), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_keychain_unwrap_key(other, env, (const uint8_t *)"ctx", 3, &o), KS_ERR_UNKNOWN_KEY);
        CHECK(buf_untouched(o));
        ks_keychain_free(other);
    }

    /* --- wrap / unwrap --- */
    EXPECT(ks_keychain_wrap_key(NULL, dek, 32, NULL, 0, &eout), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_wrap_key(kc, NULL, 32, NULL, 0, &eout), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_wrap_key(kc, dek, 32, NULL, 3, &eout), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_wrap_key(kc, dek, 32, NULL, 0, NULL), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_wrap_key(kc, dek, 0, NULL, 0, &eout), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_wrap_key(kc, NULL, 0, NULL, 0, &eout), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_wrap_key(kc, dek, HUGE, NULL, 0, &eout), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_wrap_key(kc, dek, 32, dek, HUGE, &eout), KS_ERR_INVALID_INPUT);
    {
        uint8_t *big = calloc(4097, 1);
        EXPECT(ks_keychain_wrap_key(kc, big, 4097, NULL, 0, &eout), KS_ERR_INVALID_INPUT);
        ks_envelope *e4096 = NULL;
        if (OK(ks_keychain_wrap_key(kc, big, 4096, NULL, 0, &e4096))) {
            ks_buffer o = sent_buf();
            if (OK(ks_keychain_unwrap_key(kc, e4096, NULL, 0, &o)))
                CHECK(buf_eq(o, big, 4096));
            ks_buffer_free(&o);
        }
        ks_envelope_free(e4096);
        free(big);
    }
    CHECK(eout == SENT);
    EXPECT(ks_keychain_unwrap_key(NULL, env, NULL, 0, &out), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_unwrap_key(kc, NULL, NULL, 0, &out), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_unwrap_key(kc, env, NULL, 3, &out), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_unwrap_key(kc, env, (const uint8_t *)"ctx", 3, NULL), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_unwrap_key(kc, env, (const uint8_t *)"ctx", HUGE, &out), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_unwrap_key(kc, env, (const uint8_t *)"ctX", 3, &out), KS_ERR_AUTHENTICATION);
    EXPECT(ks_keychain_unwrap_key(kc, env, NULL, 0, &out), KS_ERR_AUTHENTICATION);
    CHECK(buf_untouched(out));
    {
        ks_buffer o = sent_buf();
        if (OK(ks_keychain_unwrap_key(kc, env, (const uint8_t *)"ctx", 3, &o)))
            CHECK(buf_eq(o, dek, 32));
        ks_buffer_free(&o);
    }

    /* --- envelopes --- */
    size_t elen = 0;
    const uint8_t *ect = ks_envelope_ciphertext(env, &elen);
    CHECK(ect != NULL && elen == 32 + 33);
    EXPECT(ks_envelope_new(NULL, 1, "keystrata", ect, elen, &eout), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_envelope_new("1", 1, NULL, ect, elen, &eout), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_envelope_new("1", 1, "keystrata", NULL, elen, &eout), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_envelope_new("1", 1, "keystrata", ect, elen, NULL), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_envelope_new("1", 1, "keystrata", ect, HUGE, &eout), KS_ERR_INVALID_INPUT);
    EXPECT(ks_envelope_new("\xff\xfe", 1, "keystrata", ect, elen, &eout), KS_ERR_INVALID_INPUT);
    EXPECT(ks_envelope_new("1", 1, "\xc3\x28", ect, elen, &eout), KS_ERR_INVALID_INPUT);
    CHECK(eout == SENT);
    /* Envelope fields copied; truncated, tampered, other key id, other provider. */
    {
        ks_envelope *e = NULL;
        char kid[16];
        snprintf(kid, sizeof kid, "%s", ks_envelope_key_id(env));
        uint32_t kv = ks_envelope_key_version(env);
        CHECK(kv == 1 && strcmp(ks_envelope_provider(env), "keystrata") == 0);
        if (OK(ks_envelope_new(kid, kv, "keystrata", ect, elen, &e))) {
            ks_buffer o = sent_buf();
            if (OK(ks_keychain_unwrap_key(kc, e, (const uint8_t *)"ctx", 3, &o)))
                CHECK(buf_eq(o, dek, 32));
            ks_buffer_free(&o);
            ks_envelope_free(e);
        }
        for (size_t len = 0; len < elen; len += 7) {
            e = NULL;
            if (!OK(ks_envelope_new(kid, kv, "keystrata", ect, len, &e)))
                continue;
            ks_buffer o = sent_buf();
            ks_status st = ks_keychain_unwrap_key(kc, e, (const uint8_t *)"ctx", 3, &o);
            CHECK(st == (len < 33 ? KS_ERR_FORMAT : KS_ERR_AUTHENTICATION));
            CHECK(buf_untouched(o));
            ks_envelope_free(e);
        }
        uint8_t t[128];
        memcpy(t, ect, elen);
        t[elen - 1] ^= 1;
        e = NULL;
        if (OK(ks_envelope_new(kid, kv, "keystrata", t, elen, &e))) {
            ks_buffer o = sent_buf();
            EXPECT(ks_keychain_unwrap_key(kc, e, (const uint8_t *)"ctx", 3, &o), KS_ERR_AUTHENTICATION);
            ks_envelope_free(e);
        }
        e = NULL;
        if (OK(ks_envelope_new(kid, kv, "aws-kms", ect, elen, &e))) {
            ks_buffer o = sent_buf();
            EXPECT(ks_keychain_unwrap_key(kc, e, (const uint8_t *)"ctx", 3, &o), KS_ERR_INVALID_INPUT);
            ks_envelope_free(e);
        }
        e = NULL;
        if (OK(ks_envelope_new("12x", kv, "keystrata", ect, elen, &e))) {
            ks_buffer o = sent_buf();
            EXPECT(ks_keychain_unwrap_key(kc, e, (const uint8_t *)"ctx", 3, &o), KS_ERR_FORMAT);
            ks_envelope_free(e);
        }
        e = NULL;
        if (OK(ks_envelope_new(kid, kv + 1, "keystrata", ect, elen, &e))) {
            ks_buffer o = sent_buf();
            EXPECT(ks_keychain_unwrap_key(kc, e, (const uint8_t *)"ctx", 3, &o), KS_ERR_AUTHENTICATION);
            ks_envelope_free(e);
        }
    }
    /* Accessors with NULL. */
    CHECK(ks_envelope_key_id(NULL) == NULL);
    CHECK(ks_envelope_key_version(NULL) == 0);
    CHECK(ks_envelope_provider(NULL) == NULL);
    elen = 99;
    CHECK(ks_envelope_ciphertext(NULL, &elen) == NULL && elen == 0);
    CHECK(ks_envelope_metadata_count(NULL) == 0);
    {
        const char *nm = SENT, *vl = SENT;
        EXPECT(ks_envelope_metadata_entry(NULL, 0, &nm, &vl), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_envelope_metadata_entry(env, 0, NULL, &vl), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_envelope_metadata_entry(env, 0, &nm, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_envelope_metadata_entry(env, 4, &nm, &vl), KS_ERR_INVALID_INPUT);
        EXPECT(ks_envelope_metadata_entry(env, HUGE, &nm, &vl), KS_ERR_INVALID_INPUT);
        CHECK(nm == SENT && vl == SENT);
        /* Round trip through the metadata form. */
        const char *names[5], *values[5];
        size_t n = ks_envelope_metadata_count(env);
        CHECK(n == 4);
        for (size_t i = 0; i < n && i < 4; i++)
            OK(ks_envelope_metadata_entry(env, i, &names[i], &values[i]));
        names[4] = "x-amz-meta-unrelated";
        values[4] = "ignored";
        ks_envelope *back = NULL;
        if (OK(ks_envelope_from_metadata(names, values, 5, &back))) {
            CHECK(strcmp(ks_envelope_key_id(back), ks_envelope_key_id(env)) == 0);
            ks_buffer o = sent_buf();
            if (OK(ks_keychain_unwrap_key(kc, back, (const uint8_t *)"ctx", 3, &o)))
                CHECK(buf_eq(o, dek, 32));
            ks_buffer_free(&o);
        }
        ks_envelope_free(back);
        EXPECT(ks_envelope_from_metadata(NULL, values, 4, &eout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_envelope_from_metadata(names, NULL, 4, &eout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_envelope_from_metadata(names, values, 4, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_envelope_from_metadata(NULL, NULL, 0, &eout), KS_ERR_FORMAT);
        EXPECT(ks_envelope_from_metadata(names, values, 3, &eout), KS_ERR_FORMAT);
        EXPECT(ks_envelope_from_metadata(names, values, HUGE, &eout), KS_ERR_INVALID_INPUT);
        const char *nulls[4] = {names[0], NULL, names[2], names[3]};
        EXPECT(ks_envelope_from_metadata(nulls, values, 4, &eout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_envelope_from_metadata(names, nulls, 4, &eout), KS_ERR_NULL_ARGUMENT);
        CHECK(eout == SENT);
    }

    /* --- derivation --- */
    EXPECT(ks_keychain_derive_origin_key(NULL, 0, small, 1, small, 1, 0, &out), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, NULL, 1, small, 1, 0, &out), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, small, 1, NULL, 1, 0, &out), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, small, 1, small, 1, 0, NULL), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, small, HUGE, small, 1, 0, &out), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, small, 1, small, HUGE, 0, &out), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive_origin_key(kc, 12345, small, 1, small, 1, 0, &out), KS_ERR_UNKNOWN_KEY);
    EXPECT(ks_keychain_derive(NULL, 0, small, 1, 32, &out), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive(kc, 0, NULL, 1, 32, &out), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive(kc, 0, small, 1, 32, NULL), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive(kc, 0, small, HUGE, 32, &out), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive(kc, 0, small, 1, 0, &out), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive(kc, 0, small, 1, 8161, &out), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive(kc, 0, small, 1, HUGE, &out), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive(kc, 12345, small, 1, 32, &out), KS_ERR_UNKNOWN_KEY);
    CHECK(buf_untouched(out));
    {
        ks_key_info enc_primary, der_primary;
        OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &enc_primary));
        OK(ks_keychain_primary(kc, KS_PURPOSE_DERIVE, &der_primary));
        /* An encryption key is not a derivation key, and vice versa. */
        EXPECT(ks_keychain_derive(kc, enc_primary.key_id, small, 1, 32, &out), KS_ERR_UNKNOWN_KEY);
        ks_buffer a = sent_buf(), b = sent_buf();
        if (OK(ks_keychain_derive(kc, 0, NULL, 0, 8160, &a)) &&
            OK(ks_keychain_derive(kc, der_primary.key_id, NULL, 0, 8160, &b)))
            CHECK(a.len == 8160 && buf_eq(b, a.data, a.len));
        ks_buffer_free(&a);
        ks_buffer_free(&b);
        /* The empty origin and instance, NULL with length 0. */
        if (OK(ks_keychain_derive_origin_key(kc, 0, NULL, 0, NULL, 0, UINT64_MAX, &a)))
            CHECK(a.len == 32);
        ks_buffer_free(&a);
    }

    /* --- hazmat --- */
    {
        uint8_t key[32] = {0}, nonce[12] = {0};
        EXPECT(ks_hazmat_aes256gcm_encrypt(NULL, 32, nonce, 12, NULL, 0, small, 8, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, NULL, 12, NULL, 0, small, 8, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 12, NULL, 1, small, 8, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 12, NULL, 0, NULL, 8, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 12, NULL, 0, small, 8, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 31, nonce, 12, NULL, 0, small, 8, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 0, NULL, 0, small, 8, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, HUGE, nonce, 12, NULL, 0, small, 8, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 12, small, HUGE, small, 8, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 12, NULL, 0, small, HUGE, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(NULL, 32, nonce, 12, NULL, 0, small, 8, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, NULL, 12, NULL, 0, small, 8, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, nonce, 12, NULL, 0, NULL, 8, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, nonce, 12, NULL, 0, small, 8, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, nonce, 12, NULL, 0, small, 8, &out), KS_ERR_AUTHENTICATION);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, nonce, 12, NULL, 0, NULL, 0, &out), KS_ERR_AUTHENTICATION);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, nonce, 12, NULL, 0, small, HUGE, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 16, nonce, 12, NULL, 0, small, 8, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, NULL, 0, NULL, 0, 32, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 4, small, 8, NULL, 0, 32, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, NULL, 8, NULL, 0, 32, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, small, 8, NULL, 8, 32, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, small, HUGE, NULL, 0, 32, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_hkdf_sha256(small, HUGE, small, 8, NULL, 0, 32, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, small, 8, NULL, 0, 0, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, small, 8, NULL, 0, HUGE, &out), KS_ERR_INVALID_INPUT);
        CHECK(buf_untouched(out));
        ks_buffer a = sent_buf();
        if (OK(ks_hazmat_hkdf_sha256(NULL, 0, NULL, 0, NULL, 0, 8160, &a)))
            CHECK(a.len == 8160);
        ks_buffer_free(&a);
    }

    /* --- construction, roots, files --- */
    {
        ks_policy bad = ks_policy_default();
        bad.max_encryptions_per_key = 0;
        EXPECT(ks_keychain_generate(NULL, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_generate(&bad, &kout), KS_ERR_INVALID_INPUT);
        bad = ks_policy_default();
        bad.usage_block = 0;
        EXPECT(ks_keychain_generate(&bad, &kout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_load(small, 8, NULL, &kout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load(NULL, 8, root, &kout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load(small, 8, root, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load(small, 8, root, &kout), KS_ERR_FORMAT);
        EXPECT(ks_keychain_load(small, HUGE, root, &kout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_save(NULL, root, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save(kc, NULL, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save(kc, root, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save_file(NULL, "/tmp/x", root), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save_file(kc, NULL, root), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save_file(kc, "/tmp/x", NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save_file(kc, "/nonexistent-dir-ks/kc.age", root), KS_ERR_IO);
        EXPECT(ks_keychain_save_file(kc, "\xff\xfe", root), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_load_file(NULL, root, &kout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load_file("/tmp/x", NULL, &kout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load_file("/tmp/x", root, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load_file("/nonexistent-dir-ks/kc.age", root, &kout), KS_ERR_IO);
        EXPECT(ks_keychain_open(NULL, root, NULL, &kout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_open("/tmp/x", NULL, NULL, &kout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_open("/tmp/x", root, NULL, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_open("/nonexistent-dir-ks/kc.age", root, NULL, &kout), KS_ERR_IO);
        EXPECT(ks_keychain_import_tink_cleartext(NULL, 5, &kout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_import_tink_cleartext(small, 8, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_import_tink_cleartext(small, HUGE, &kout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_import_tink_cleartext(NULL, 0, &kout), KS_ERR_FORMAT);
        EXPECT(ks_keychain_export_tink_cleartext(NULL, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_export_tink_cleartext(kc, NULL), KS_ERR_NULL_ARGUMENT);
        CHECK(kout == SENT);
        CHECK(buf_untouched(out));

        const char *id = "AGE-SECRET-KEY-1garbage";
        const char *nul = NULL;
        EXPECT(ks_root_age_new(NULL, 0, NULL, 0, &rout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_new(NULL, 1, NULL, 0, &rout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_new(NULL, 0, NULL, 1, &rout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_new(&nul, 1, NULL, 0, &rout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_new(NULL, 0, &nul, 1, &rout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_new(&id, 1, NULL, 0, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_new(&id, 1, NULL, 0, &rout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_new(NULL, 0, &id, 1, &rout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_new(&id, HUGE, NULL, 0, &rout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_new(NULL, 0, &id, HUGE, &rout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_generate(NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_passphrase_new(NULL, 0, 10, &rout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_passphrase_new(NULL, 4, 10, &rout), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_passphrase_new(small, 4, 10, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_passphrase_new((const uint8_t *)"pass", 4, 31, &rout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_passphrase_new((const uint8_t *)"pass", 4, 255, &rout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_passphrase_new((const uint8_t *)"\xff\xfe", 2, 10, &rout), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_passphrase_new(small, HUGE, 10, &rout), KS_ERR_INVALID_INPUT);
        CHECK(rout == SENT);
        EXPECT(ks_root_age_identity(NULL, 0, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_identity(root, 0, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_identity(root, 1, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_identity(root, HUGE, &out), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_recipient(NULL, 0, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_recipient(root, 0, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_recipient(root, HUGE, &out), KS_ERR_INVALID_INPUT);
        ks_root *pr = NULL;
        if (OK(ks_root_passphrase_new((const uint8_t *)"pass", 4, 2, &pr))) {
            EXPECT(ks_root_age_identity(pr, 0, &out), KS_ERR_INVALID_INPUT);
            EXPECT(ks_root_age_recipient(pr, 0, &out), KS_ERR_INVALID_INPUT);
        }
        ks_root_free(pr);
        CHECK(buf_untouched(out));
        /* An age root rebuilt from the identity string opens what the generated one saved. */
        ks_buffer ident = sent_buf(), saved = sent_buf();
        if (OK(ks_root_age_identity(root, 0, &ident)) && OK(ks_keychain_save(kc, root, &saved))) {
            CHECK(ident.len > 16 && memcmp(ident.data, "AGE-SECRET-KEY-1", 16) == 0);
            char *s = calloc(ident.len + 1, 1);
            memcpy(s, ident.data, ident.len);
            const char *ids[1] = {s};
            ks_root *r2 = NULL;
            ks_keychain *k2 = NULL;
            if (OK(ks_root_age_new(ids, 1, NULL, 0, &r2)) && OK(ks_keychain_load(saved.data, saved.len, r2, &k2))) {
                ks_buffer o = sent_buf();
                if (OK(ks_keychain_unseal(k2, sealed.data, sealed.len, (const uint8_t *)"aad", 3, &o)))
                    CHECK(buf_eq(o, (const uint8_t *)"secret", 6));
                ks_buffer_free(&o);
            }
            ks_keychain_free(k2);
            ks_root_free(r2);
            memset(s, 0, ident.len);
            free(s);
            /* A recipient-only root saves but cannot load. */
            ks_buffer rec = sent_buf();
            if (OK(ks_root_age_recipient(root, 0, &rec))) {
                char *rs = calloc(rec.len + 1, 1);
                memcpy(rs, rec.data, rec.len);
                const char *recs[1] = {rs};
                ks_root *ro = NULL;
                if (OK(ks_root_age_new(NULL, 0, recs, 1, &ro))) {
                    ks_buffer s3 = sent_buf();
                    if (OK(ks_keychain_save(kc, ro, &s3))) {
                        ks_keychain *k3 = SENT;
                        CHECK(ks_keychain_load(s3.data, s3.len, ro, &k3) != KS_OK);
                        CHECK(k3 == SENT);
                        if (OK(ks_keychain_load(s3.data, s3.len, root, &k3)))
                            ks_keychain_free(k3);
                    }
                    ks_buffer_free(&s3);
                }
                ks_root_free(ro);
                free(rs);
            }
            ks_buffer_free(&rec);
        }
        ks_buffer_free(&ident);
        ks_buffer_free(&saved);
    }

    /* --- state queries and lifecycle with NULL / unknown keys / bad indexes --- */
    {
        uint32_t u32 = 77;
        size_t count = 77;
        bool b = true;
        ks_key_info info;
        memset(&info, 0xAB, sizeof info);
        ks_key_info before = info;
        ks_policy pol = {1, 2, 3};
        ks_counters ctr;
        uint64_t sub = 77;
        EXPECT(ks_keychain_close(NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_health_check(NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_active_key_version(NULL, &u32), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_active_key_version(kc, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_is_bound(NULL, &b), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_is_bound(kc, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_rotate(NULL, &info), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_rotate_derivation(NULL, &info), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_add_key(NULL, 1, &info), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_add_key(kc, 0, &info), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_add_key(kc, 3, &info), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_add_key(kc, UINT32_MAX, &info), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_promote(NULL, 1, &info), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_promote(kc, 12345, &info), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_keychain_disable(NULL, 1), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_disable(kc, 12345), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_keychain_enable(NULL, 1), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_enable(kc, 12345), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_keychain_destroy(NULL, 1), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_destroy(kc, 12345), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_keychain_key_count(NULL, &count), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_key_count(kc, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_key_info(NULL, 0, &info), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_key_info(kc, 0, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_key_info(kc, 2, &info), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_key_info(kc, HUGE, &info), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_keys(NULL, &info, 1, &count), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_keys(kc, &info, 1, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_primary(NULL, 1, &info), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_primary(kc, 1, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_primary(kc, 0, &info), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_primary(kc, 3, &info), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_get_policy(NULL, &pol), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_get_policy(kc, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_set_policy(NULL, &pol), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_set_policy(kc, NULL), KS_ERR_NULL_ARGUMENT);
        pol = ks_policy_default();
        pol.max_encryptions_per_key = 0;
        EXPECT(ks_keychain_set_policy(kc, &pol), KS_ERR_INVALID_INPUT);
        pol.max_encryptions_per_key = (1ULL << 32) + 1;
        EXPECT(ks_keychain_set_policy(kc, &pol), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_counters(NULL, &ctr), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_counters(kc, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_subscribe(NULL, noop_cb, NULL, &sub), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_subscribe(kc, NULL, NULL, &sub), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_subscribe(kc, noop_cb, NULL, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_unsubscribe(NULL, 1), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_unsubscribe(kc, 987654321), KS_ERR_INVALID_INPUT);
        CHECK(u32 == 77 && count == 77 && b == true && sub == 77);
        CHECK(memcmp(&info, &before, sizeof info) == 0);
        /* Out-params that may be NULL. */
        OK(ks_keychain_add_key(kc, KS_PURPOSE_DERIVE, NULL));
        OK(ks_keychain_rotate(kc, NULL));
        OK(ks_keychain_rotate_derivation(kc, NULL));
        OK(ks_keychain_key_count(kc, &count));
        CHECK(count == 5);
    }

    ks_buffer_free(&sealed);
    ks_buffer_free(&encd);
    ks_envelope_free(env);
    ks_root_free(root);
    ks_keychain_free(kc);
    group_end(NULL);
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t mu;
    int by_kind[16];
    int total;
    ks_event events[256]; /* the first 256 */
    int n_events;
} ev_rec;

static void ev_rec_init(ev_rec *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
}

static void ev_cb(const ks_event *e, void *user_data)
{
    ev_rec *r = user_data;
    pthread_mutex_lock(&r->mu);
    if ((int)e->kind >= 0 && (int)e->kind < 16)
        r->by_kind[e->kind]++;
    r->total++;
    if (r->n_events < 256)
        r->events[r->n_events++] = *e;
    pthread_mutex_unlock(&r->mu);
}

static int ev_count(ev_rec *r, ks_event_kind k)
{
    pthread_mutex_lock(&r->mu);
    int n = r->by_kind[k];
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* The last event of kind k, if any. */
static bool ev_last(ev_rec *r, ks_event_kind k, ks_event *out)
{
    bool found = false;
    pthread_mutex_lock(&r->mu);
    for (int i = r->n_events - 1; i >= 0; i--)
        if (r->events[i].kind == k) {
            *out = r->events[i];
            found = true;
            break;
        }
    pthread_mutex_unlock(&r->mu);
    return found;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

static uint32_t sealed_key_id(ks_buffer b)
{
    return b.len >= 5 ? be32(b.data + 1) : 0;
}

static void group_lifecycle(void)
{
    group_begin("lifecycle");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc))) {
        group_end(NULL);
        return;
    }
    ev_rec rec;
    ev_rec_init(&rec);
    uint64_t sub = 0;
    OK(ks_keychain_subscribe(kc, ev_cb, &rec, &sub));

    size_t count = 0;
    OK(ks_keychain_key_count(kc, &count));
    CHECK(count == 2);
    ks_key_info e1, d1;
    OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &e1));
    OK(ks_keychain_primary(kc, KS_PURPOSE_DERIVE, &d1));
    CHECK(e1.version == 1 && e1.primary && e1.purpose == KS_PURPOSE_ENCRYPT && e1.status == KS_KEY_ENABLED);
    CHECK(d1.version == 1 && d1.primary && d1.purpose == KS_PURPOSE_DERIVE && d1.status == KS_KEY_ENABLED);
    CHECK(e1.key_id != d1.key_id && e1.key_id != 0 && e1.created_at > 1600000000ULL);
    bool bound = true;
    OK(ks_keychain_is_bound(kc, &bound));
    CHECK(!bound);
    OK(ks_keychain_health_check(kc));

    const uint8_t *aad = (const uint8_t *)"lifecycle";
    ks_buffer s1 = sent_buf(), x1 = sent_buf(), o = sent_buf();
    ks_envelope *w1 = NULL;
    uint8_t dek[32];
    memset(dek, 7, sizeof dek);
    OK(ks_keychain_seal(kc, (const uint8_t *)"one", 3, aad, 9, &s1));
    OK(ks_keychain_encrypt(kc, (const uint8_t *)"doc one", 7, aad, 9, &x1));
    OK(ks_keychain_wrap_key(kc, dek, 32, aad, 9, &w1));
    CHECK(sealed_key_id(s1) == e1.key_id);
    ks_buffer od1 = sent_buf();
    OK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)"https://a", 9, (const uint8_t *)"i", 1, 0, &od1));

    /* rotate */
    ks_key_info e2;
    memset(&e2, 0, sizeof e2);
    OK(ks_keychain_rotate(kc, &e2));
    CHECK(e2.version == 2 && e2.primary && e2.purpose == KS_PURPOSE_ENCRYPT && e2.status == KS_KEY_ENABLED);
    CHECK(e2.key_id != e1.key_id && e2.usage == 0);
    uint32_t v = 0;
    OK(ks_keychain_active_key_version(kc, &v));
    CHECK(v == 2);
    ks_event ev;
    CHECK(ev_count(&rec, KS_EVENT_KEY_ROTATED) == 1);
    if (CHECK(ev_last(&rec, KS_EVENT_KEY_ROTATED, &ev)))
        CHECK(ev.key_id == e2.key_id && ev.key_version == 2 && ev.purpose == KS_PURPOSE_ENCRYPT && !ev.automatic &&
              ev.error == KS_OK);
    ks_buffer s2 = sent_buf();
    OK(ks_keychain_seal(kc, (const uint8_t *)"two", 3, aad, 9, &s2));
    CHECK(sealed_key_id(s2) == e2.key_id);
    if (OK(ks_keychain_unseal(kc, s1.data, s1.len, aad, 9, &o)))
        CHECK(buf_eq(o, (const uint8_t *)"one", 3));
    ks_buffer_free(&o);
    o = sent_buf();
    if (OK(ks_keychain_decrypt(kc, x1.data, x1.len, aad, 9, &o)))
        CHECK(buf_eq(o, (const uint8_t *)"doc one", 7));
    ks_buffer_free(&o);
    o = sent_buf();
    if (OK(ks_keychain_unwrap_key(kc, w1, aad, 9, &o)))
        CHECK(buf_eq(o, dek, 32));
    ks_buffer_free(&o);
    /* Rotation leaves derived keys alone. */
    ks_buffer od2 = sent_buf();
    if (OK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)"https://a", 9, (const uint8_t *)"i", 1, 0, &od2)))
        CHECK(buf_eq(od2, od1.data, od1.len));
    ks_buffer_free(&od2);

    /* add_key + promote: two-phase rotation */
    ks_key_info e3, p3;
    OK(ks_keychain_add_key(kc, KS_PURPOSE_ENCRYPT, &e3));
    CHECK(e3.version == 3 && !e3.primary && e3.status == KS_KEY_ENABLED);
    CHECK(ev_count(&rec, KS_EVENT_KEY_CREATED) >= 1);
    ks_buffer s3 = sent_buf();
    OK(ks_keychain_seal(kc, (const uint8_t *)"x", 1, NULL, 0, &s3));
    CHECK(sealed_key_id(s3) == e2.key_id);
    ks_buffer_free(&s3);
    OK(ks_keychain_promote(kc, e3.key_id, &p3));
    CHECK(p3.key_id == e3.key_id && p3.primary);
    CHECK(ev_count(&rec, KS_EVENT_KEY_PROMOTED) == 1);
    s3 = sent_buf();
    OK(ks_keychain_seal(kc, (const uint8_t *)"x", 1, NULL, 0, &s3));
    CHECK(sealed_key_id(s3) == e3.key_id);
    ks_buffer_free(&s3);
    OK(ks_keychain_active_key_version(kc, &v));
    CHECK(v == 3);

    /* disable / enable: a ciphertext under a disabled key */
    OK(ks_keychain_disable(kc, e1.key_id));
    CHECK(ev_count(&rec, KS_EVENT_KEY_DISABLED) == 1);
    o = sent_buf();
    EXPECT(ks_keychain_unseal(kc, s1.data, s1.len, aad, 9, &o), KS_ERR_KEY_DISABLED);
    EXPECT(ks_keychain_decrypt(kc, x1.data, x1.len, aad, 9, &o), KS_ERR_KEY_DISABLED);
    EXPECT(ks_keychain_unwrap_key(kc, w1, aad, 9, &o), KS_ERR_KEY_DISABLED);
    CHECK(buf_untouched(o));
    ks_key_info ki;
    OK(ks_keychain_key_info(kc, 0, &ki));
    CHECK(ki.key_id == e1.key_id && ki.status == KS_KEY_DISABLED);
    EXPECT(ks_keychain_promote(kc, e1.key_id, NULL), KS_ERR_POLICY);
    OK(ks_keychain_enable(kc, e1.key_id));
    CHECK(ev_count(&rec, KS_EVENT_KEY_ENABLED) == 1);
    if (OK(ks_keychain_unseal(kc, s1.data, s1.len, aad, 9, &o)))
        CHECK(buf_eq(o, (const uint8_t *)"one", 3));
    ks_buffer_free(&o);
    /* The primary can be neither disabled nor destroyed. */
    EXPECT(ks_keychain_disable(kc, e3.key_id), KS_ERR_POLICY);
    EXPECT(ks_keychain_destroy(kc, e3.key_id), KS_ERR_POLICY);
    EXPECT(ks_keychain_disable(kc, d1.key_id), KS_ERR_POLICY);

    /* destroy: a ciphertext after its key was destroyed */
    OK(ks_keychain_destroy(kc, e1.key_id));
    CHECK(ev_count(&rec, KS_EVENT_KEY_DESTROYED) == 1);
    o = sent_buf();
    EXPECT(ks_keychain_unseal(kc, s1.data, s1.len, aad, 9, &o), KS_ERR_KEY_DESTROYED);
    EXPECT(ks_keychain_decrypt(kc, x1.data, x1.len, aad, 9, &o), KS_ERR_KEY_DESTROYED);
    EXPECT(ks_keychain_unwrap_key(kc, w1, aad, 9, &o), KS_ERR_KEY_DESTROYED);
    CHECK(buf_untouched(o));
    OK(ks_keychain_destroy(kc, e1.key_id)); /* idempotent */
    EXPECT(ks_keychain_enable(kc, e1.key_id), KS_ERR_POLICY);
    EXPECT(ks_keychain_disable(kc, e1.key_id), KS_ERR_POLICY);
    EXPECT(ks_keychain_promote(kc, e1.key_id, NULL), KS_ERR_POLICY);
    OK(ks_keychain_key_info(kc, 0, &ki));
    CHECK(ki.status == KS_KEY_DESTROYED);
    /* A failed decryption is an event carrying its status. */
    if (CHECK(ev_last(&rec, KS_EVENT_DECRYPT_FAILED, &ev)))
        CHECK(ev.error == KS_ERR_KEY_DESTROYED);
    EXPECT(ks_keychain_unseal(kc, s2.data, s2.len, NULL, 0, &o), KS_ERR_AUTHENTICATION);
    if (CHECK(ev_last(&rec, KS_EVENT_DECRYPT_FAILED, &ev)))
        CHECK(ev.error == KS_ERR_AUTHENTICATION && ev.key_id == e2.key_id);

    /* listing */
    ks_key_info infos[8];
    memset(infos, 0xAB, sizeof infos);
    ks_key_info pattern[8];
    memcpy(pattern, infos, sizeof infos);
    count = 0;
    EXPECT(ks_keychain_keys(kc, infos, 2, &count), KS_ERR_BUFFER_TOO_SMALL);
    CHECK(count == 4);
    CHECK(memcmp(infos, pattern, sizeof infos) == 0);
    count = 0;
    EXPECT(ks_keychain_keys(kc, NULL, 0, &count), KS_ERR_BUFFER_TOO_SMALL);
    CHECK(count == 4);
    EXPECT(ks_keychain_keys(kc, NULL, 4, &count), KS_ERR_NULL_ARGUMENT);
    count = 0;
    if (OK(ks_keychain_keys(kc, infos, 4, &count)) && CHECK(count == 4)) {
        CHECK(infos[0].key_id == e1.key_id && infos[0].status == KS_KEY_DESTROYED);
        CHECK(infos[1].key_id == d1.key_id && infos[1].primary);
        CHECK(infos[2].key_id == e2.key_id && !infos[2].primary && infos[2].usage >= 1);
        CHECK(infos[3].key_id == e3.key_id && infos[3].primary);
        for (size_t i = 0; i < 4; i++) {
            OK(ks_keychain_key_info(kc, i, &ki));
            CHECK(ki.key_id == infos[i].key_id && ki.version == infos[i].version && ki.status == infos[i].status &&
                  ki.primary == infos[i].primary && ki.purpose == infos[i].purpose);
        }
        CHECK(memcmp(&infos[4], &pattern[4], sizeof(ks_key_info) * 4) == 0);
    }
    count = 0;
    OK(ks_keychain_keys(kc, infos, 8, &count));
    CHECK(count == 4);
    EXPECT(ks_keychain_key_info(kc, 4, &ki), KS_ERR_INVALID_INPUT);

    /* derivation keys: rotate_derivation changes derived keys; the old key by ID does not */
    ks_key_info d2;
    OK(ks_keychain_rotate_derivation(kc, &d2));
    CHECK(d2.purpose == KS_PURPOSE_DERIVE && d2.version == 2 && d2.primary);
    ks_buffer od3 = sent_buf(), od4 = sent_buf();
    if (OK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)"https://a", 9, (const uint8_t *)"i", 1, 0, &od3)))
        CHECK(od3.len == 32 && !buf_eq(od3, od1.data, od1.len));
    if (OK(ks_keychain_derive_origin_key(kc, d1.key_id, (const uint8_t *)"https://a", 9, (const uint8_t *)"i", 1, 0,
                                         &od4)))
        CHECK(buf_eq(od4, od1.data, od1.len));
    ks_buffer_free(&od3);
    ks_buffer_free(&od4);
    EXPECT(ks_keychain_derive(kc, e3.key_id, NULL, 0, 32, &o), KS_ERR_UNKNOWN_KEY);
    OK(ks_keychain_disable(kc, d1.key_id));
    EXPECT(ks_keychain_derive(kc, d1.key_id, NULL, 0, 32, &o), KS_ERR_KEY_DISABLED);
    EXPECT(ks_keychain_derive_origin_key(kc, d1.key_id, NULL, 0, NULL, 0, 0, &o), KS_ERR_KEY_DISABLED);
    OK(ks_keychain_destroy(kc, d1.key_id));
    EXPECT(ks_keychain_derive(kc, d1.key_id, NULL, 0, 32, &o), KS_ERR_KEY_DESTROYED);
    CHECK(buf_untouched(o));
    ks_key_info d3;
    OK(ks_keychain_add_key(kc, KS_PURPOSE_DERIVE, &d3));
    CHECK(!d3.primary && d3.purpose == KS_PURPOSE_DERIVE);
    OK(ks_keychain_promote(kc, d3.key_id, NULL));
    OK(ks_keychain_primary(kc, KS_PURPOSE_DERIVE, &ki));
    CHECK(ki.key_id == d3.key_id);

    /* unsubscribe: no more events */
    OK(ks_keychain_unsubscribe(kc, sub));
    int before = rec.total;
    OK(ks_keychain_rotate(kc, NULL));
    CHECK(rec.total == before);
    EXPECT(ks_keychain_unsubscribe(kc, sub), KS_ERR_INVALID_INPUT);

    ks_buffer_free(&od1);
    ks_buffer_free(&s1);
    ks_buffer_free(&s2);
    ks_buffer_free(&x1);
    ks_envelope_free(w1);
    ks_keychain_free(kc);
    pthread_mutex_destroy(&rec.mu);
    group_end(NULL);
}

static void group_policy_and_counters(void)
{
    group_begin("policy, counters");
    ks_policy d = ks_policy_default();
    CHECK(d.max_encryptions_per_key == (1ULL << 32) && d.max_key_age_secs == 0 && d.usage_block == 65536);

    /* An unbound keychain with a limit of 3: the 4th encryption is refused. */
    ks_policy p = d;
    p.max_encryptions_per_key = 3;
    ks_keychain *kc = NULL;
    if (OK(ks_keychain_generate(&p, &kc))) {
        ks_policy got;
        OK(ks_keychain_get_policy(kc, &got));
        CHECK(got.max_encryptions_per_key == 3 && got.max_key_age_secs == 0 && got.usage_block == 65536);
        ks_buffer b[3];
        for (int i = 0; i < 3; i++) {
            b[i] = sent_buf();
            OK(ks_keychain_seal(kc, (const uint8_t *)"s", 1, NULL, 0, &b[i]));
        }
        ks_buffer o = sent_buf();
        EXPECT(ks_keychain_seal(kc, (const uint8_t *)"s", 1, NULL, 0, &o), KS_ERR_POLICY);
        EXPECT(ks_keychain_encrypt(kc, (const uint8_t *)"s", 1, NULL, 0, &o), KS_ERR_POLICY);
        CHECK(buf_untouched(o));
        /* Decrypting is not limited; rotating lifts the limit. */
        if (OK(ks_keychain_unseal(kc, b[2].data, b[2].len, NULL, 0, &o)))
            CHECK(buf_eq(o, (const uint8_t *)"s", 1));
        ks_buffer_free(&o);
        OK(ks_keychain_rotate(kc, NULL));
        o = sent_buf();
        OK(ks_keychain_seal(kc, (const uint8_t *)"s", 1, NULL, 0, &o));
        ks_buffer_free(&o);
        for (int i = 0; i < 3; i++)
            ks_buffer_free(&b[i]);
        ks_keychain_free(kc);
    }
    /* The same through ks_keychain_set_policy. */
    kc = NULL;
    if (OK(ks_keychain_generate(NULL, &kc))) {
        OK(ks_keychain_set_policy(kc, &p));
        ks_policy got;
        OK(ks_keychain_get_policy(kc, &got));
        CHECK(got.max_encryptions_per_key == 3);
        ks_buffer o;
        for (int i = 0; i < 3; i++) {
            o = sent_buf();
            OK(ks_keychain_seal(kc, (const uint8_t *)"s", 1, NULL, 0, &o));
            ks_buffer_free(&o);
        }
        o = sent_buf();
        EXPECT(ks_keychain_seal(kc, (const uint8_t *)"s", 1, NULL, 0, &o), KS_ERR_POLICY);
        CHECK(buf_untouched(o));
        ks_keychain_free(kc);
    }

    /* Counters: exact after a known sequence. */
    kc = NULL;
    if (OK(ks_keychain_generate(NULL, &kc))) {
        ks_counters c;
        memset(&c, 0xFF, sizeof c);
        OK(ks_keychain_counters(kc, &c));
        CHECK(c.seal == 0 && c.unseal_ok == 0 && c.rotations == 0 && c.errors[1] == 0);
        ks_buffer s = sent_buf(), x = sent_buf(), o = sent_buf();
        ks_envelope *w = NULL;
        uint8_t k[16] = {0};
        OK(ks_keychain_seal(kc, k, 16, NULL, 0, &s));
        OK(ks_keychain_seal(kc, k, 16, NULL, 0, &o));
        ks_buffer_free(&o);
        OK(ks_keychain_unseal(kc, s.data, s.len, NULL, 0, &o));
        ks_buffer_free(&o);
        EXPECT(ks_keychain_unseal(kc, s.data, s.len, k, 1, &o), KS_ERR_AUTHENTICATION);
        EXPECT(ks_keychain_unseal(kc, s.data, 3, NULL, 0, &o), KS_ERR_FORMAT);
        OK(ks_keychain_encrypt(kc, k, 16, NULL, 0, &x));
        OK(ks_keychain_decrypt(kc, x.data, x.len, NULL, 0, &o));
        ks_buffer_free(&o);
        EXPECT(ks_keychain_decrypt(kc, x.data, x.len, k, 2, &o), KS_ERR_AUTHENTICATION);
        OK(ks_keychain_wrap_key(kc, k, 16, NULL, 0, &w));
        OK(ks_keychain_unwrap_key(kc, w, NULL, 0, &o));
        ks_buffer_free(&o);
        EXPECT(ks_keychain_unwrap_key(kc, w, k, 1, &o), KS_ERR_AUTHENTICATION);
        OK(ks_keychain_derive(kc, 0, NULL, 0, 16, &o));
        ks_buffer_free(&o);
        OK(ks_keychain_rotate(kc, NULL));
        OK(ks_keychain_rotate_derivation(kc, NULL));
        OK(ks_keychain_counters(kc, &c));
        CHECK(c.seal == 2 && c.unseal_ok == 1 && c.unseal_failed == 2);
        CHECK(c.encrypt == 1 && c.decrypt_ok == 1 && c.decrypt_failed == 1);
        CHECK(c.wrap == 1 && c.unwrap_ok == 1 && c.unwrap_failed == 1);
        CHECK(c.derive == 1 && c.rotations == 2);
        CHECK(c.errors[KS_ERR_AUTHENTICATION - 1] == 3 && c.errors[KS_ERR_FORMAT - 1] == 1);
        CHECK(c.errors[KS_ERR_INVALID_INPUT - 1] == 0 && c.errors[KS_ERR_INTERNAL - 1] == 0);
        ks_buffer_free(&s);
        ks_buffer_free(&x);
        ks_envelope_free(w);
        ks_keychain_free(kc);
    }
    group_end(NULL);
}

/* ------------------------------------------------------------------ */
/* Files: save/load, bound keychains                                   */
/* ------------------------------------------------------------------ */

static bool same_listing(const ks_keychain *a, const ks_keychain *b)
{
    ks_key_info ia[64], ib[64];
    size_t na = 0, nb = 0;
    if (ks_keychain_keys(a, ia, 64, &na) != KS_OK || ks_keychain_keys(b, ib, 64, &nb) != KS_OK || na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (ia[i].key_id != ib[i].key_id || ia[i].status != ib[i].status || ia[i].primary != ib[i].primary ||
            ia[i].version != ib[i].version || ia[i].purpose != ib[i].purpose)
            return false;
    return true;
}

static void group_files(void)
{
    group_begin("save, load, bound files");
    char path[512], path2[512], path3[512];
    snprintf(path, sizeof path, "%s/saved.age", g_tmpdir);
    snprintf(path2, sizeof path2, "%s/bound.age", g_tmpdir);
    snprintf(path3, sizeof path3, "%s/auto.age", g_tmpdir);
    ks_root *root = NULL, *other = NULL, *proot = NULL;
    OK(ks_root_age_generate(&root));
    OK(ks_root_age_generate(&other));
    OK(ks_root_passphrase_new((const uint8_t *)"pässword", 9, 4, &proot));
    ks_keychain *kc = NULL;
    OK(ks_keychain_generate(NULL, &kc));
    OK(ks_keychain_rotate(kc, NULL));
    ks_buffer s = sent_buf(), o = sent_buf();
    OK(ks_keychain_seal(kc, (const uint8_t *)"saved", 5, NULL, 0, &s));

    /* save_file / load_file */
    ks_keychain *l = NULL;
    if (OK(ks_keychain_save_file(kc, path, root)) && OK(ks_keychain_load_file(path, root, &l))) {
        CHECK(same_listing(kc, l));
        if (OK(ks_keychain_unseal(l, s.data, s.len, NULL, 0, &o)))
            CHECK(buf_eq(o, (const uint8_t *)"saved", 5));
        ks_buffer_free(&o);
        bool bound = true;
        OK(ks_keychain_is_bound(l, &bound));
        CHECK(!bound);
    }
    ks_keychain_free(l);
    l = SENT;
    EXPECT(ks_keychain_load_file(path, other, &l), KS_ERR_AUTHENTICATION);
    EXPECT(ks_keychain_load_file(path, proot, &l), KS_ERR_AUTHENTICATION);
    CHECK(l == SENT);

    /* save / load in memory, passphrase root */
    ks_buffer saved = sent_buf();
    l = NULL;
    if (OK(ks_keychain_save(kc, proot, &saved)) && OK(ks_keychain_load(saved.data, saved.len, proot, &l))) {
        CHECK(same_listing(kc, l));
        o = sent_buf();
        if (OK(ks_keychain_unseal(l, s.data, s.len, NULL, 0, &o)))
            CHECK(buf_eq(o, (const uint8_t *)"saved", 5));
        ks_buffer_free(&o);
    }
    ks_keychain_free(l);
    l = SENT;
    EXPECT(ks_keychain_load(saved.data, saved.len, root, &l), KS_ERR_AUTHENTICATION);
    CHECK(l == SENT);
    ks_buffer_free(&saved);

    /* open (bound) -> seal -> rotate -> load_file sees the rotation */
    ks_keychain *b = NULL;
    ks_key_info r;
    memset(&r, 0, sizeof r);
    ks_buffer bs = sent_buf();
    if (OK(ks_keychain_open(path2, root, NULL, &b))) {
        bool bound = false;
        OK(ks_keychain_is_bound(b, &bound));
        CHECK(bound);
        struct stat st;
        CHECK(stat(path2, &st) == 0 && st.st_size > 0);
        OK(ks_keychain_seal(b, (const uint8_t *)"bound", 5, NULL, 0, &bs));
        OK(ks_keychain_rotate(b, &r));
        l = NULL;
        if (OK(ks_keychain_load_file(path2, root, &l))) {
            size_t n = 0;
            OK(ks_keychain_key_count(l, &n));
            CHECK(n == 3);
            ks_key_info p;
            OK(ks_keychain_primary(l, KS_PURPOSE_ENCRYPT, &p));
            CHECK(p.key_id == r.key_id && p.version == 2);
            o = sent_buf();
            if (OK(ks_keychain_unseal(l, bs.data, bs.len, NULL, 0, &o)))
                CHECK(buf_eq(o, (const uint8_t *)"bound", 5));
            ks_buffer_free(&o);
            /* The usage reserved in the file covers the seal made. */
            ks_key_info infos[4];
            size_t cnt = 0;
            if (OK(ks_keychain_keys(l, infos, 4, &cnt)) && CHECK(cnt == 3))
                CHECK(infos[0].usage >= 1);
        }
        ks_keychain_free(l);
        /* A file that does not open with the root is an error and stays untouched. */
        bytes_t before = read_file(path2);
        ks_keychain *w = SENT;
        CHECK(ks_keychain_open(path2, other, NULL, &w) != KS_OK);
        CHECK(w == SENT);
        bytes_t after = read_file(path2);
        CHECK(before.n == after.n && before.n > 0 && memcmp(before.p, after.p, before.n) == 0);
        bytes_free(&before);
        bytes_free(&after);
        ks_keychain_free(b);
        /* Reopened: the rotation is there. */
        b = NULL;
        if (OK(ks_keychain_open(path2, root, NULL, &b))) {
            ks_key_info p;
            OK(ks_keychain_primary(b, KS_PURPOSE_ENCRYPT, &p));
            CHECK(p.key_id == r.key_id);
            o = sent_buf();
            if (OK(ks_keychain_unseal(b, bs.data, bs.len, NULL, 0, &o)))
                CHECK(buf_eq(o, (const uint8_t *)"bound", 5));
            ks_buffer_free(&o);
        }
        ks_keychain_free(b);
    }
    ks_buffer_free(&bs);

    /* A bound keychain rotates by itself at the limit (an automatic event). */
    ks_policy p = ks_policy_default();
    p.max_encryptions_per_key = 3;
    p.usage_block = 2;
    b = NULL;
    if (OK(ks_keychain_open(path3, root, &p, &b))) {
        ev_rec rec;
        ev_rec_init(&rec);
        uint64_t sub = 0;
        OK(ks_keychain_subscribe(b, ev_cb, &rec, &sub));
        ks_buffer sb[5];
        for (int i = 0; i < 5; i++) {
            sb[i] = sent_buf();
            OK(ks_keychain_seal(b, (const uint8_t *)"auto", 4, NULL, 0, &sb[i]));
        }
        uint32_t v = 0;
        OK(ks_keychain_active_key_version(b, &v));
        CHECK(v == 2);
        CHECK(sealed_key_id(sb[0]) == sealed_key_id(sb[2]) && sealed_key_id(sb[3]) != sealed_key_id(sb[2]));
        ks_event ev;
        CHECK(ev_count(&rec, KS_EVENT_KEY_ROTATED) == 1);
        if (CHECK(ev_last(&rec, KS_EVENT_KEY_ROTATED, &ev)))
            CHECK(ev.automatic && ev.key_id == sealed_key_id(sb[3]) && ev.key_version == 2);
        ks_counters c;
        OK(ks_keychain_counters(b, &c));
        CHECK(c.rotations == 1 && c.seal == 5);
        OK(ks_keychain_unsubscribe(b, sub));
        ks_keychain_free(b);
        /* Everything opens from the file. */
        l = NULL;
        if (OK(ks_keychain_load_file(path3, root, &l))) {
            ks_policy got;
            OK(ks_keychain_get_policy(l, &got));
            CHECK(got.max_encryptions_per_key == 3 && got.usage_block == 2);
            for (int i = 0; i < 5; i++) {
                o = sent_buf();
                if (OK(ks_keychain_unseal(l, sb[i].data, sb[i].len, NULL, 0, &o)))
                    CHECK(buf_eq(o, (const uint8_t *)"auto", 4));
                ks_buffer_free(&o);
            }
        }
        ks_keychain_free(l);
        for (int i = 0; i < 5; i++)
            ks_buffer_free(&sb[i]);
        pthread_mutex_destroy(&rec.mu);
    }

    ks_buffer_free(&s);
    ks_keychain_free(kc);
    ks_root_free(root);
    ks_root_free(other);
    ks_root_free(proot);
    group_end(NULL);
}

/* ------------------------------------------------------------------ */
/* Tink export / import round trip                                     */
/* ------------------------------------------------------------------ */

static void group_tink_round_trip(void)
{
    group_begin("tink export/import");
    ks_keychain *kc = NULL;
    OK(ks_keychain_generate(NULL, &kc));
    ks_buffer s1 = sent_buf(), s2 = sent_buf(), x = sent_buf(), json = sent_buf(), o = sent_buf();
    OK(ks_keychain_seal(kc, (const uint8_t *)"v1", 2, (const uint8_t *)"a", 1, &s1));
    ks_key_info r;
    OK(ks_keychain_rotate(kc, &r));
    OK(ks_keychain_seal(kc, (const uint8_t *)"v2", 2, (const uint8_t *)"a", 1, &s2));
    OK(ks_keychain_encrypt(kc, (const uint8_t *)"doc", 3, NULL, 0, &x));
    ks_keychain *im = NULL;
    if (OK(ks_keychain_export_tink_cleartext(kc, &json))) {
        CHECK(json.len > 0 && json.data[0] == '{' && memchr(json.data, '\0', json.len) == NULL);
        json_error_t err;
        json_t *parsed = json_loadb((const char *)json.data, json.len, 0, &err);
        if (CHECK(parsed != NULL)) {
            CHECK((uint32_t)json_integer_value(json_object_get(parsed, "primaryKeyId")) == r.key_id);
            CHECK(json_array_size(json_object_get(parsed, "key")) == 2);
            json_decref(parsed);
        }
        if (OK(ks_keychain_import_tink_cleartext(json.data, json.len, &im))) {
            ks_key_info p;
            OK(ks_keychain_primary(im, KS_PURPOSE_ENCRYPT, &p));
            CHECK(p.key_id == r.key_id);
            if (OK(ks_keychain_unseal(im, s1.data, s1.len, (const uint8_t *)"a", 1, &o)))
                CHECK(buf_eq(o, (const uint8_t *)"v1", 2));
            ks_buffer_free(&o);
            o = sent_buf();
            if (OK(ks_keychain_unseal(im, s2.data, s2.len, (const uint8_t *)"a", 1, &o)))
                CHECK(buf_eq(o, (const uint8_t *)"v2", 2));
            ks_buffer_free(&o);
            o = sent_buf();
            if (OK(ks_keychain_decrypt(im, x.data, x.len, NULL, 0, &o)))
                CHECK(buf_eq(o, (const uint8_t *)"doc", 3));
            ks_buffer_free(&o);
            /* And back: what the import seals, the original opens. */
            o = sent_buf();
            ks_buffer back = sent_buf();
            if (OK(ks_keychain_seal(im, (const uint8_t *)"back", 4, NULL, 0, &back)) &&
                OK(ks_keychain_unseal(kc, back.data, back.len, NULL, 0, &o)))
                CHECK(buf_eq(o, (const uint8_t *)"back", 4));
            ks_buffer_free(&o);
            ks_buffer_free(&back);
        }
        /* A truncated keyset is refused. */
        ks_keychain *t = SENT;
        CHECK(ks_keychain_import_tink_cleartext(json.data, json.len / 2, &t) == KS_ERR_FORMAT);
        CHECK(t == SENT);
    }
    ks_buffer_free(&json);
    ks_buffer_free(&s1);
    ks_buffer_free(&s2);
    ks_buffer_free(&x);
    ks_keychain_free(im);
    ks_keychain_free(kc);
    group_end(NULL);
}

/* ------------------------------------------------------------------ */
/* Close                                                               */
/* ------------------------------------------------------------------ */
/* Into the caller's buffer: ks_keychain_{seal,unseal,encrypt,decrypt}_to */

static void group_into_buffers(void)
{
    group_begin("into caller buffers");
    ks_keychain *kc = NULL;
    if (!CHECK(ks_keychain_generate(NULL, &kc) == KS_OK)) {
        group_end(NULL);
        return;
    }
    static const size_t sizes[] = {0, 1, 64, 1000, 70000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *pt = malloc(n + 1), *ct = malloc(n + 99), *back = malloc(n + 1);
        for (size_t j = 0; j < n; j++)
            pt[j] = (uint8_t)(j * 31 + 7);
        const uint8_t aad[] = "aad";
        size_t got = 0;
        /* seal_to: same bytes as ks_keychain_seal opens, exact sizes only. */
        OK(ks_keychain_seal_to(kc, pt, n, aad, 3, ct, n + 33));
        OK(ks_keychain_unsealed_len(ct, n + 33, &got));
        CHECK(got == n);
        ks_buffer opened = {0};
        OK(ks_keychain_unseal(kc, ct, n + 33, aad, 3, &opened));
        CHECK(opened.len == n && (n == 0 || memcmp(opened.data, pt, n) == 0));
        ks_buffer_free(&opened);
        OK(ks_keychain_unseal_to(kc, ct, n + 33, aad, 3, back, n));
        CHECK(n == 0 || memcmp(back, pt, n) == 0);
        EXPECT(ks_keychain_unseal_to(kc, ct, n + 33, aad, 3, back, n + 1), KS_ERR_INVALID_INPUT);
        /* A wrong output size is refused, and the output is zeroed. */
        uint8_t *scratch = malloc(n + 34);
        memset(scratch, 0xAA, n + 34);
        EXPECT(ks_keychain_seal_to(kc, pt, n, aad, 3, scratch, n + 32), KS_ERR_INVALID_INPUT);
        bool wiped = true;
        for (size_t j = 0; j < n + 32; j++)
            wiped = wiped && scratch[j] == 0;
        CHECK(wiped);
        EXPECT(ks_keychain_seal_to(kc, pt, n, aad, 3, scratch, n + 34), KS_ERR_INVALID_INPUT);
        free(scratch);
        /* A wrong aad fails, and leaves no plaintext in `back`. */
        if (n > 0) {
            memset(back, 0xAA, n);
            EXPECT(ks_keychain_unseal_to(kc, ct, n + 33, (const uint8_t *)"x", 1, back, n), KS_ERR_AUTHENTICATION);
            bool zeroed = true;
            for (size_t j = 0; j < n; j++)
                zeroed = zeroed && back[j] == 0;
            CHECK(zeroed);
        }
        /* encrypt_to / decrypt_to. */
        OK(ks_keychain_encrypt_to(kc, pt, n, aad, 3, ct, n + 99));
        OK(ks_keychain_decrypted_len(ct, n + 99, &got));
        CHECK(got == n);
        OK(ks_keychain_decrypt_to(kc, ct, n + 99, aad, 3, back, n));
        CHECK(n == 0 || memcmp(back, pt, n) == 0);
        ks_buffer dec = {0};
        OK(ks_keychain_decrypt(kc, ct, n + 99, aad, 3, &dec));
        CHECK(dec.len == n);
        ks_buffer_free(&dec);
        EXPECT(ks_keychain_encrypt_to(kc, pt, n, aad, 3, ct, n + 98), KS_ERR_INVALID_INPUT);
        /* Output overlapping an input is refused before any work. */
        if (n > 0) {
            memcpy(ct, pt, n);
            EXPECT(ks_keychain_seal_to(kc, ct, n, aad, 3, ct, n + 33), KS_ERR_INVALID_INPUT);
            EXPECT(ks_keychain_seal_to(kc, pt, n, ct + 5, 3, ct, n + 33), KS_ERR_INVALID_INPUT);
        }
        free(pt);
        free(ct);
        free(back);
    }
    /* NULL arguments. */
    uint8_t buf[64];
    EXPECT(ks_keychain_seal_to(NULL, buf, 1, NULL, 0, buf + 1, 34), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_seal_to(kc, NULL, 1, NULL, 0, buf, 34), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_seal_to(kc, buf, 1, NULL, 0, NULL, 34), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_unsealed_len(buf, 10, NULL), KS_ERR_NULL_ARGUMENT);
    size_t got = 0;
    EXPECT(ks_keychain_unsealed_len(buf, 10, &got), KS_ERR_FORMAT);
    EXPECT(ks_keychain_decrypted_len(buf, 3, &got), KS_ERR_FORMAT);
    /* After close: Unavailable. */
    ks_keychain_close(kc);
    EXPECT(ks_keychain_seal_to(kc, buf, 1, NULL, 0, buf + 8, 34), KS_ERR_UNAVAILABLE);
    ks_keychain_free(kc);
    group_end(NULL);
}

static void group_close(void)
{
    group_begin("close");
    const ks_status U = KS_ERR_UNAVAILABLE;
    ks_keychain *kc = NULL;
    ks_root *root = NULL;
    OK(ks_root_age_generate(&root));
    OK(ks_keychain_generate(NULL, &kc));
    ks_buffer s = sent_buf(), x = sent_buf(), out = sent_buf();
    ks_envelope *w = NULL;
    ks_key_info e, d, info;
    OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &e));
    OK(ks_keychain_primary(kc, KS_PURPOSE_DERIVE, &d));
    OK(ks_keychain_add_key(kc, KS_PURPOSE_ENCRYPT, &info));
    OK(ks_keychain_seal(kc, (const uint8_t *)"c", 1, NULL, 0, &s));
    OK(ks_keychain_encrypt(kc, (const uint8_t *)"c", 1, NULL, 0, &x));
    OK(ks_keychain_wrap_key(kc, (const uint8_t *)"0123456789abcdef", 16, NULL, 0, &w));
    ev_rec rec;
    ev_rec_init(&rec);
    uint64_t sub = 0;
    OK(ks_keychain_subscribe(kc, ev_cb, &rec, &sub));

    OK(ks_keychain_close(kc));
    OK(ks_keychain_close(kc)); /* idempotent */
    ks_envelope *eout = SENT;
    uint32_t u32 = 77;
    size_t count = 77;
    bool b = true;
    ks_policy pol = {1, 2, 3}, newp = ks_policy_default();
    uint64_t sub2 = 77;
    ks_key_info infos[4];
    char path[512];
    snprintf(path, sizeof path, "%s/closed.age", g_tmpdir);
    EXPECT(ks_keychain_health_check(kc), U);
    EXPECT(ks_keychain_seal(kc, (const uint8_t *)"c", 1, NULL, 0, &out), U);
    EXPECT(ks_keychain_unseal(kc, s.data, s.len, NULL, 0, &out), U);
    EXPECT(ks_keychain_encrypt(kc, (const uint8_t *)"c", 1, NULL, 0, &out), U);
    EXPECT(ks_keychain_decrypt(kc, x.data, x.len, NULL, 0, &out), U);
    EXPECT(ks_keychain_wrap_key(kc, (const uint8_t *)"0123456789abcdef", 16, NULL, 0, &eout), U);
    EXPECT(ks_keychain_unwrap_key(kc, w, NULL, 0, &out), U);
    EXPECT(ks_keychain_derive(kc, 0, NULL, 0, 32, &out), U);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, NULL, 0, NULL, 0, 0, &out), U);
    EXPECT(ks_keychain_save(kc, root, &out), U);
    EXPECT(ks_keychain_export_tink_cleartext(kc, &out), U);
    EXPECT(ks_keychain_save_file(kc, path, root), U);
    EXPECT(ks_keychain_active_key_version(kc, &u32), U);
    EXPECT(ks_keychain_rotate(kc, &info), U);
    EXPECT(ks_keychain_rotate_derivation(kc, &info), U);
    EXPECT(ks_keychain_add_key(kc, KS_PURPOSE_ENCRYPT, &info), U);
    EXPECT(ks_keychain_promote(kc, info.key_id, &info), U);
    EXPECT(ks_keychain_disable(kc, e.key_id), U);
    EXPECT(ks_keychain_enable(kc, e.key_id), U);
    EXPECT(ks_keychain_destroy(kc, info.key_id), U);
    EXPECT(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &info), U);
    EXPECT(ks_keychain_key_count(kc, &count), U);
    EXPECT(ks_keychain_key_info(kc, 0, &info), U);
    EXPECT(ks_keychain_keys(kc, infos, 4, &count), U);
    EXPECT(ks_keychain_get_policy(kc, &pol), U);
    EXPECT(ks_keychain_set_policy(kc, &newp), U);
    EXPECT(ks_keychain_is_bound(kc, &b), U);
    EXPECT(ks_keychain_subscribe(kc, ev_cb, &rec, &sub2), U);
    CHECK(buf_untouched(out) && eout == SENT && u32 == 77 && count == 77 && b && sub2 == 77);
    CHECK(pol.max_encryptions_per_key == 1 && pol.max_key_age_secs == 2 && pol.usage_block == 3);
    struct stat st;
    CHECK(stat(path, &st) != 0);
    /* Kept working after close: the counters (final metrics) and unsubscribe (cleanup). */
    ks_counters c;
    if (OK(ks_keychain_counters(kc, &c)))
        CHECK(c.seal == 1 && c.encrypt == 1 && c.wrap == 1);
    OK(ks_keychain_unsubscribe(kc, sub));
    ks_keychain_free(kc);
    ks_buffer_free(&s);
    ks_buffer_free(&x);
    ks_envelope_free(w);
    ks_root_free(root);
    pthread_mutex_destroy(&rec.mu);
    group_end(NULL);
}

/* ------------------------------------------------------------------ */
/* Threads: 8 workers on one keychain while another thread rotates     */
/* ------------------------------------------------------------------ */

typedef struct {
    uint8_t msg[24];
    size_t msg_len;
    uint8_t aad[12];
    uint8_t key[32];
    ks_buffer sealed, encrypted;
    ks_envelope *wrapped;
} thread_rec;

typedef struct {
    const ks_keychain *kc;
    int id;
    size_t min_iter, max_iter;
    atomic_bool *rotator_done;
    atomic_int *sealed_once; /* workers that sealed (or gave up) */
    atomic_int *rotated;     /* rotations done so far */
    pthread_barrier_t *start;
    const uint8_t *origin_key; /* the derived key every thread must see */
    thread_rec *recs;
    size_t n;
    int bad; /* failed checks in this worker (reported, then asserted once) */
} worker_arg;

/* In workers: report a failure, tally it, count nothing on success. */
static bool wcheck_(worker_arg *a, bool ok, const char *expr, int line)
{
    if (!ok) {
        a->bad++;
        if (a->bad <= 5)
            fprintf(stderr, "test_keystrata.c:%d: worker %d FAILED: %s\n", line, a->id, expr);
    }
    return ok;
}
static bool wok_(worker_arg *a, ks_status st, const char *call, int line)
{
    if (st != KS_OK && a->bad < 5)
        fprintf(stderr, "test_keystrata.c:%d: worker %d: %s -> %s: %s\n", line, a->id, call, ks_status_name((int)st),
                ks_last_error_message());
    return wcheck_(a, st == KS_OK, call, line);
}
#define WCHECK(a, c) wcheck_((a), (c), #c, __LINE__)
#define WOK(a, call) wok_((a), (call), #call, __LINE__)

static void *worker(void *p)
{
    worker_arg *a = p;
    char ctx[32];
    snprintf(ctx, sizeof ctx, "worker %d", a->id);
    g_ctx = ctx;
    pthread_barrier_wait(a->start);
    bool counted = false;
    for (size_t i = 0; i < a->max_iter && (i < a->min_iter || !atomic_load(a->rotator_done)); i++) {
        /* Deterministic whatever the scheduling: the rotator starts once
         * every worker has sealed under the first key, and each worker
         * waits at the middle of its minimum for the first rotation, so
         * ciphertexts under two keys always exist. */
        if (i == 1 && !counted) {
            atomic_fetch_add(a->sealed_once, 1);
            counted = true;
        }
        if (i == a->min_iter / 2) {
            while (atomic_load(a->rotated) == 0)
                sched_yield();
        }
        thread_rec *r = &a->recs[a->n];
        memset(r, 0, sizeof *r);
        r->msg_len = (size_t)snprintf((char *)r->msg, sizeof r->msg, "t%d-i%zu", a->id, i);
        snprintf((char *)r->aad, sizeof r->aad, "aad-%d", a->id);
        for (size_t k = 0; k < 32; k++)
            r->key[k] = (uint8_t)(a->id * 31 + i * 7 + k);
        r->sealed = sent_buf();
        r->encrypted = sent_buf();
        ks_buffer o = sent_buf();
        if (!WOK(a, ks_keychain_seal(a->kc, r->msg, r->msg_len, r->aad, 6, &r->sealed)))
            break;
        if (WOK(a, ks_keychain_unseal(a->kc, r->sealed.data, r->sealed.len, r->aad, 6, &o)))
            WCHECK(a, buf_eq(o, r->msg, r->msg_len));
        ks_buffer_free(&o);
        if (!WOK(a, ks_keychain_encrypt(a->kc, r->msg, r->msg_len, r->aad, 6, &r->encrypted))) {
            ks_buffer_free(&r->sealed);
            break;
        }
        o = sent_buf();
        if (WOK(a, ks_keychain_decrypt(a->kc, r->encrypted.data, r->encrypted.len, r->aad, 6, &o)))
            WCHECK(a, buf_eq(o, r->msg, r->msg_len));
        ks_buffer_free(&o);
        if (!WOK(a, ks_keychain_wrap_key(a->kc, r->key, 32, r->aad, 6, &r->wrapped))) {
            ks_buffer_free(&r->sealed);
            ks_buffer_free(&r->encrypted);
            break;
        }
        o = sent_buf();
        if (WOK(a, ks_keychain_unwrap_key(a->kc, r->wrapped, r->aad, 6, &o)))
            WCHECK(a, buf_eq(o, r->key, 32));
        ks_buffer_free(&o);
        a->n++;
        if (i % 8 == 0) {
            o = sent_buf();
            if (WOK(a, ks_keychain_derive_origin_key(a->kc, 0, (const uint8_t *)"https://app.example", 19,
                                                 (const uint8_t *)"web-1", 5, 0, &o)))
                WCHECK(a, buf_eq(o, a->origin_key, 32));
            ks_buffer_free(&o);
        }
    }
    if (!counted)
        atomic_fetch_add(a->sealed_once, 1);
    g_ctx = "";
    return NULL;
}

typedef struct {
    ks_keychain *kc;
    int rotations;
    int workers;
    atomic_bool *done;
    atomic_int *sealed_once;
    atomic_int *rotated;
    pthread_barrier_t *start;
    uint32_t *ids;
} rotator_arg;

static void *rotator(void *p)
{
    rotator_arg *a = p;
    g_ctx = "rotator";
    pthread_barrier_wait(a->start);
    while (atomic_load(a->sealed_once) < a->workers)
        sched_yield();
    for (int i = 0; i < a->rotations; i++) {
        ks_key_info info;
        if (OK(ks_keychain_rotate(a->kc, &info)))
            a->ids[i] = info.key_id;
        atomic_fetch_add(a->rotated, 1);
        sleep_ms(1); /* pacing only: spreads the rotations over the run */
    }
    atomic_store(a->done, true);
    g_ctx = "";
    return NULL;
}

static void group_threads(void)
{
    enum { WORKERS = 8 };
    group_begin("threads");
    const int rotations = g_quick ? 10 : 50;
    const size_t min_iter = g_quick ? 10 : 100, max_iter = g_quick ? 200 : 5000;
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc))) {
        group_end(NULL);
        return;
    }
    ev_rec rec;
    ev_rec_init(&rec);
    uint64_t sub = 0;
    OK(ks_keychain_subscribe(kc, ev_cb, &rec, &sub));
    ks_buffer ok0 = sent_buf();
    OK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)"https://app.example", 19, (const uint8_t *)"web-1", 5, 0,
                                     &ok0));
    CHECK(ok0.len == 32);

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, WORKERS + 1);
    atomic_bool done;
    atomic_init(&done, false);
    atomic_int sealed_once, rotated;
    atomic_init(&sealed_once, 0);
    atomic_init(&rotated, 0);
    worker_arg wa[WORKERS];
    pthread_t wt[WORKERS], rt;
    uint32_t *ids = calloc((size_t)rotations, sizeof *ids);
    rotator_arg ra = {kc, rotations, WORKERS, &done, &sealed_once, &rotated, &start, ids};
    for (int i = 0; i < WORKERS; i++) {
        wa[i] = (worker_arg){kc,           i, min_iter, max_iter, &done, &sealed_once, &rotated, &start,
                             ok0.data,     calloc(max_iter, sizeof(thread_rec)),        0,     0};
        CHECK(pthread_create(&wt[i], NULL, worker, &wa[i]) == 0);
    }
    CHECK(pthread_create(&rt, NULL, rotator, &ra) == 0);
    CHECK(pthread_join(rt, NULL) == 0);
    for (int i = 0; i < WORKERS; i++)
        CHECK(pthread_join(wt[i], NULL) == 0);
    pthread_barrier_destroy(&start);

    /* After the storm: every ciphertext opens to what was sealed. */
    size_t total = 0;
    int bad = 0;
    uint32_t first_id = 0;
    bool several_keys = false;
    for (int i = 0; i < WORKERS; i++) {
        for (size_t j = 0; j < wa[i].n; j++) {
            thread_rec *r = &wa[i].recs[j];
            ks_buffer o = sent_buf();
            if (ks_keychain_unseal(kc, r->sealed.data, r->sealed.len, r->aad, 6, &o) != KS_OK ||
                !buf_eq(o, r->msg, r->msg_len))
                bad++;
            ks_buffer_free(&o);
            o = sent_buf();
            if (ks_keychain_decrypt(kc, r->encrypted.data, r->encrypted.len, r->aad, 6, &o) != KS_OK ||
                !buf_eq(o, r->msg, r->msg_len))
                bad++;
            ks_buffer_free(&o);
            o = sent_buf();
            if (ks_keychain_unwrap_key(kc, r->wrapped, r->aad, 6, &o) != KS_OK || !buf_eq(o, r->key, 32))
                bad++;
            ks_buffer_free(&o);
            uint32_t id = sealed_key_id(r->sealed);
            if (first_id == 0)
                first_id = id;
            else if (id != first_id)
                several_keys = true;
            ks_buffer_free(&r->sealed);
            ks_buffer_free(&r->encrypted);
            ks_envelope_free(r->wrapped);
            total++;
        }
        CHECK(wa[i].n >= min_iter);
        CHECK(wa[i].bad == 0);
        free(wa[i].recs);
    }
    CHECK(bad == 0);
    CHECK(total >= WORKERS * min_iter);
    /* The workers really ran across rotations. */
    CHECK(several_keys);
    size_t count = 0;
    OK(ks_keychain_key_count(kc, &count));
    CHECK(count == 2 + (size_t)rotations);
    ks_key_info p;
    OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &p));
    CHECK(p.key_id == ids[rotations - 1] && p.version == (uint32_t)rotations + 1);
    ks_counters c;
    OK(ks_keychain_counters(kc, &c));
    CHECK(c.rotations == (uint64_t)rotations);
    CHECK(c.seal == total && c.encrypt == total && c.wrap == total);
    CHECK(c.unseal_ok == 2 * total && c.decrypt_ok == 2 * total && c.unwrap_ok == 2 * total);
    CHECK(c.unseal_failed == 0 && c.decrypt_failed == 0 && c.unwrap_failed == 0);
    CHECK(ev_count(&rec, KS_EVENT_KEY_ROTATED) == rotations);
    CHECK(ev_count(&rec, KS_EVENT_DECRYPT_FAILED) == 0);
    OK(ks_keychain_unsubscribe(kc, sub));
    ks_buffer_free(&ok0);
    free(ids);
    ks_keychain_free(kc);
    pthread_mutex_destroy(&rec.mu);
    char extra[128];
    snprintf(extra, sizeof extra, "  (%d workers, %zu records, %d rotations)", WORKERS, total, rotations);
    group_end(extra);
}

/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Portable ciphertexts                                                */
/* ------------------------------------------------------------------ */

static const char *const k_portable_roots[4] = {"age", "wrong_age", "passphrase", "wrong_passphrase"};

/* The root a name of portable.json's "roots" describes (NULL on error). */
static ks_root *portable_root(const json_t *roots, const char *name)
{
    const json_t *r = json_object_get(roots, name);
    ks_root *root = NULL;
    if (!REQUIRE(json_is_object(r)))
        return NULL;
    const char *id = json_string_value(json_object_get(r, "age_identity"));
    if (id) {
        OK(ks_root_age_new(&id, 1, NULL, 0, &root));
    } else {
        const char *p = jstr(r, "passphrase");
        OK(ks_root_passphrase_new((const uint8_t *)p, strlen(p), (uint8_t)jint(r, "work_factor"), &root));
    }
    return root;
}

static ks_root *portable_root_named(ks_root *const roots[4], const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(k_portable_roots[i], name) == 0)
            return roots[i];
    REQUIRE(!"a root name portable.json does not define");
    return NULL;
}

typedef struct {
    const ks_root *root;
    const ks_buffer *blob;
    pthread_barrier_t *start;
    bool ok;
} portable_thread_arg;

static void *portable_thread(void *p)
{
    portable_thread_arg *a = p;
    pthread_barrier_wait(a->start);
    ks_buffer out = {NULL, 0};
    a->ok = ks_root_decrypt_portable(a->root, a->blob->data, a->blob->len, (const uint8_t *)"t", 1, &out) == KS_OK &&
            out.len == 6 && memcmp(out.data, "thread", 6) == 0;
    ks_buffer_free(&out);
    return NULL;
}

static void group_portable(const char *dir)
{
    group_begin("portable ciphertexts");

    /* Vectors: one root handle per name, its KEK cache kept across cases
     * (a cache must never change an answer); each case decrypted twice. */
    ks_root *vroots[4] = {NULL, NULL, NULL, NULL};
    int n_ok = 0, n_bad = 0;
    json_t *j = load_json(dir, "portable.json");
    if (j) {
        CHECK(jint(j, "format_version") == 1);
        const json_t *rs = json_object_get(j, "roots");
        for (int i = 0; i < 4; i++)
            vroots[i] = portable_root(rs, k_portable_roots[i]);
        size_t i;
        json_t *c;
        json_array_foreach(jarr(j, "decrypt"), i, c)
        {
            g_ctx = jstr(c, "comment");
            ks_root *r = portable_root_named(vroots, jstr(c, "root"));
            bytes_t blob = hex(jstr(c, "blob_hex")), aad = hex(jstr(c, "aad_hex")), pt = hex(jstr(c, "plaintext_hex"));
            for (int rep = 0; rep < 2; rep++) {
                ks_buffer out = sent_buf();
                if (OK(ks_root_decrypt_portable(r, blob.p, blob.n, aad.p, aad.n, &out)))
                    CHECK(buf_eq(out, pt.p, pt.n));
                ks_buffer_free(&out);
            }
            n_ok++;
            bytes_free(&blob);
            bytes_free(&aad);
            bytes_free(&pt);
        }
        json_array_foreach(jarr(j, "invalid"), i, c)
        {
            g_ctx = jstr(c, "comment");
            ks_root *r = portable_root_named(vroots, jstr(c, "root"));
            bytes_t blob = hex(jstr(c, "blob_hex")), aad = hex(jstr(c, "aad_hex"));
            ks_status want = (ks_status)jint(c, "error_code");
            CHECK((int)want >= 1 && (int)want <= 12);
            ks_buffer out = sent_buf();
            EXPECT(ks_root_decrypt_portable(r, blob.p, blob.n, aad.p, aad.n, &out), want);
            CHECK(buf_untouched(out));
            n_bad++;
            bytes_free(&blob);
            bytes_free(&aad);
        }
        g_ctx = "";
        CHECK(n_ok == 7 && n_bad == 28);
        /* Under "age": 6 valid cases twice; 4 wrapped KEKs unwrapped once
         * each, and 6 invalid cases that reach the root (never cached). */
        ks_portable_counters pc;
        if (OK(ks_root_portable_counters(vroots[0], &pc)))
            CHECK(pc.decrypt_ok == 12 && pc.decrypt_failed == 26 && pc.cached_keks == 4 && pc.root_calls == 10);
        json_decref(j);
    }
    for (int i = 0; i < 4; i++)
        ks_root_free(vroots[i]);

    /* Round trip: a bound keychain encrypts; a separate root handle made
     * from the identity alone decrypts, calling the root once per KEK. */
    char path[512];
    snprintf(path, sizeof path, "%s/portable.age", g_tmpdir);
    ks_root *root = NULL, *reader = NULL;
    ks_keychain *kc = NULL;
    ks_buffer id = sent_buf();
    enum { N = 20 };
    ks_buffer blobs[2 * N];
    memset(blobs, 0, sizeof blobs);
    if (OK(ks_root_age_generate(&root)) && OK(ks_root_age_identity(root, 0, &id)) &&
        OK(ks_keychain_open(path, root, NULL, &kc))) {
        char *ident = calloc(1, id.len + 1);
        memcpy(ident, id.data, id.len);
        const char *idp = ident;
        OK(ks_root_age_new(&idp, 1, NULL, 0, &reader));
        free(ident);
        char msg[32];
        for (int i = 0; i < 2 * N; i++) {
            if (i == N)
                OK(ks_keychain_rotate(kc, NULL));
            int len = snprintf(msg, sizeof msg, "portable %d", i);
            OK(ks_keychain_encrypt_portable(kc, (const uint8_t *)msg, (size_t)len, (const uint8_t *)"ctx", 3, &blobs[i]));
        }
        /* The keychain is not needed to decrypt. */
        ks_keychain_free(kc);
        kc = NULL;
        ks_portable_counters pc;
        for (int i = 0; i < 2 * N; i++) {
            int len = snprintf(msg, sizeof msg, "portable %d", i);
            ks_buffer out = sent_buf();
            if (OK(ks_root_decrypt_portable(reader, blobs[i].data, blobs[i].len, (const uint8_t *)"ctx", 3, &out)))
                CHECK(buf_eq(out, (const uint8_t *)msg, (size_t)len));
            ks_buffer_free(&out);
            if (i == N - 1 && OK(ks_root_portable_counters(reader, &pc)))
                CHECK(pc.root_calls == 1 && pc.cached_keks == 1 && pc.decrypt_ok == N);
        }
        if (OK(ks_root_portable_counters(reader, &pc)))
            CHECK(pc.root_calls == 2 && pc.cached_keks == 2 && pc.decrypt_ok == 2 * N && pc.decrypt_failed == 0);
        /* Header: "KSP" 0x01, then a wrapped KEK that is an age file. */
        CHECK(blobs[0].len > 8 && memcmp(blobs[0].data, "KSP\x01", 4) == 0);
        CHECK(memcmp(blobs[0].data + 8, "age-encryption.org/v1\n", 22) == 0);
        /* One wrapping per KEK: the first N share their wrapped bytes. */
        uint32_t n0 = be32(blobs[0].data + 4), n1 = be32(blobs[N - 1].data + 4), n2 = be32(blobs[N].data + 4);
        CHECK(n0 == n1 && memcmp(blobs[0].data + 8, blobs[N - 1].data + 8, n0) == 0);
        CHECK(n0 != n2 || memcmp(blobs[0].data + 8, blobs[N].data + 8, n0) != 0);

        /* Wrong aad: opaque Authentication, output untouched. */
        ks_buffer out = sent_buf();
        EXPECT(ks_root_decrypt_portable(reader, blobs[0].data, blobs[0].len, (const uint8_t *)"no", 2, &out),
               KS_ERR_AUTHENTICATION);
        CHECK(buf_untouched(out));
        CHECK(strstr(ks_last_error_message(), "could not be authenticated") != NULL);
        /* Another identity: Authentication, the same opaque message. */
        ks_root *other = NULL;
        if (OK(ks_root_age_generate(&other)) &&
            EXPECT(ks_root_decrypt_portable(other, blobs[0].data, blobs[0].len, (const uint8_t *)"ctx", 3, &out),
                   KS_ERR_AUTHENTICATION))
            CHECK(strstr(ks_last_error_message(), "could not be authenticated") != NULL);
        ks_root_free(other);

        /* clear: the next decryption calls the root again. */
        OK(ks_root_portable_clear(reader));
        if (OK(ks_root_portable_counters(reader, &pc)))
            CHECK(pc.cached_keks == 0 && pc.root_calls == 2);
        OK(ks_root_decrypt_portable(reader, blobs[0].data, blobs[0].len, (const uint8_t *)"ctx", 3, &out));
        ks_buffer_free(&out);
        if (OK(ks_root_portable_counters(reader, &pc)))
            CHECK(pc.cached_keks == 1 && pc.root_calls == 3);

        /* Threads meeting one new wrapped KEK at once: one root call. */
        ks_keychain *kc2 = NULL;
        ks_buffer tb = sent_buf();
        if (OK(ks_keychain_open(path, root, NULL, &kc2)) &&
            OK(ks_keychain_encrypt_portable(kc2, (const uint8_t *)"thread", 6, (const uint8_t *)"t", 1, &tb))) {
            enum { T = 6 };
            pthread_barrier_t start;
            pthread_barrier_init(&start, NULL, T);
            pthread_t th[T];
            portable_thread_arg ta[T];
            for (int t = 0; t < T; t++) {
                ta[t] = (portable_thread_arg){reader, &tb, &start, false};
                CHECK(pthread_create(&th[t], NULL, portable_thread, &ta[t]) == 0);
            }
            for (int t = 0; t < T; t++) {
                pthread_join(th[t], NULL);
                CHECK(ta[t].ok);
            }
            pthread_barrier_destroy(&start);
            if (OK(ks_root_portable_counters(reader, &pc)))
                CHECK(pc.root_calls == 4);
        }
        ks_buffer_free(&tb);
        ks_keychain_free(kc2);
    }
    ks_buffer_free(&id);
    for (int i = 0; i < 2 * N; i++)
        ks_buffer_free(&blobs[i]);

    /* An unbound keychain has no root: Policy, output untouched. */
    ks_keychain *ub = NULL;
    if (OK(ks_keychain_generate(NULL, &ub))) {
        ks_buffer out = sent_buf();
        EXPECT(ks_keychain_encrypt_portable(ub, (const uint8_t *)"x", 1, NULL, 0, &out), KS_ERR_POLICY);
        CHECK(buf_untouched(out));
        CHECK(strstr(ks_last_error_message(), "open(location, root)") != NULL);
    }
    ks_keychain_free(ub);

    /* NULL arguments. */
    ks_buffer out = sent_buf();
    ks_portable_counters pc;
    EXPECT(ks_keychain_encrypt_portable(NULL, (const uint8_t *)"x", 1, NULL, 0, &out), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_root_decrypt_portable(NULL, (const uint8_t *)"KSP", 3, NULL, 0, &out), KS_ERR_NULL_ARGUMENT);
    if (root) {
        EXPECT(ks_root_decrypt_portable(root, NULL, 3, NULL, 0, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_decrypt_portable(root, (const uint8_t *)"KSP", 3, NULL, 1, &out), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_decrypt_portable(root, (const uint8_t *)"KSP", 3, NULL, 0, NULL), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_decrypt_portable(root, NULL, 0, NULL, 0, &out), KS_ERR_FORMAT);
        EXPECT(ks_root_portable_counters(root, NULL), KS_ERR_NULL_ARGUMENT);
    }
    /* A root never used for portable decryption reports zeros. */
    ks_root *fresh = NULL;
    if (OK(ks_root_age_generate(&fresh)) && OK(ks_root_portable_counters(fresh, &pc)))
        CHECK(pc.decrypt_ok == 0 && pc.decrypt_failed == 0 && pc.root_calls == 0 && pc.cached_keks == 0);
    OK(ks_root_portable_clear(fresh));
    ks_root_free(fresh);
    EXPECT(ks_root_portable_counters(NULL, &pc), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_root_portable_clear(NULL), KS_ERR_NULL_ARGUMENT);
    CHECK(buf_untouched(out));
    ks_root_free(reader);
    ks_root_free(root);
    char extra[96];
    snprintf(extra, sizeof extra, "  (vectors: decrypt %d, invalid %d; round trip %d blobs)", n_ok, n_bad, 2 * N);
    group_end(extra);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/vectors";
    const char *q = getenv("KS_TEST_QUICK");
    g_quick = q && q[0] && strcmp(q, "0") != 0;
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/ks-c-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    printf("keystrata %s C tests%s\n", ks_version(), g_quick ? " (quick)" : "");

    group_status_and_messages();
    group_keystrata_vectors(dir);
    group_tink_vectors(dir);
    group_wycheproof_aes_gcm(dir);
    group_wycheproof_hkdf(dir);
    group_hostile();
    group_lifecycle();
    group_policy_and_counters();
    group_files();
    group_tink_round_trip();
    group_into_buffers();
    group_close();
    group_threads();
    group_portable(dir);

    rm_tmpdir();
    int pass = atomic_load(&g_pass), fail = atomic_load(&g_fail);
    printf("c-tests: %d passed, %d failed\n", pass, fail);
    return fail == 0 ? 0 : 1;
}
