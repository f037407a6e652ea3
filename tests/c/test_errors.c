/*
 * Statuses and per-call error objects: names and numbers, the `ks_error
 * **err` out-parameter (NULL or not), an error object's lifetime, error
 * objects made on many threads at once, buffers and _free functions.
 */
#include "harness.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static void group_status_names(void)
{
    group_begin("status names");
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
    /* The enums' names are the core's, the same in every language. */
    CHECK(strcmp(ks_event_kind_name(KS_EVENT_KEY_ROTATED), "key_rotated") == 0);
    CHECK(strcmp(ks_event_kind_name(KS_EVENT_DECRYPT_FAILED), "decrypt_failed") == 0);
    CHECK(strcmp(ks_purpose_name(KS_PURPOSE_NONE), "none") == 0);
    CHECK(strcmp(ks_purpose_name(KS_PURPOSE_DERIVE), "derive") == 0);
    CHECK(strcmp(ks_key_status_name(KS_KEY_DESTROYED), "destroyed") == 0);
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        CHECK(ks_event_kind_name(garbage[i]) == NULL);
        CHECK(ks_key_status_name(garbage[i]) == NULL);
        CHECK(ks_purpose_name(garbage[i]) == NULL);
    }
    group_end(NULL);
}

static void group_error_objects(void)
{
    group_begin("error objects");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    ks_buffer out = sent_buf();
    const uint8_t junk[3] = {'x', 'y', 'z'};

    /* err == NULL: the status alone, nothing written anywhere. */
    CHECK(ks_keychain_unseal(kc, junk, 3, NULL, 0, &out, NULL) == KS_ERR_FORMAT);
    CHECK(ks_keychain_seal(kc, junk, 3, NULL, 0, &out, NULL) == KS_OK);
    ks_buffer_free(&out);

    /* err != NULL: NULL after a success, whatever it held before. */
    ks_error *err = (ks_error *)SENT;
    out = sent_buf();
    CHECK(ks_keychain_seal(kc, junk, 3, NULL, 0, &out, &err) == KS_OK);
    CHECK(err == NULL);
    ks_buffer_free(&out);

    /* After a failure: an object with the status returned and a message;
     * the output untouched. */
    out = sent_buf();
    ks_status st = ks_keychain_unseal(kc, junk, 3, NULL, 0, &out, &err);
    CHECK(st == KS_ERR_FORMAT && err != NULL && buf_untouched(out));
    if (err != NULL) {
        CHECK(ks_error_status(err) == KS_ERR_FORMAT);
        const char *m = ks_error_message(err);
        CHECK(m != NULL && strncmp(m, "Format: ", 8) == 0);
        /* The object belongs to this call: later calls, failing or not,
         * on this thread or with this handle, do not touch it. */
        char copy[256];
        snprintf(copy, sizeof copy, "%s", m);
        ks_error *other = NULL;
        CHECK(ks_keychain_generate(NULL, NULL, &other) == KS_ERR_NULL_ARGUMENT && other != NULL && other != err);
        CHECK(ks_error_status(other) == KS_ERR_NULL_ARGUMENT);
        CHECK(strstr(ks_error_message(other), "out") != NULL);
        ks_error_free(other);
        uint32_t v = 0;
        ks_error *none = (ks_error *)SENT;
        CHECK(ks_keychain_active_key_version(kc, &v, &none) == KS_OK && none == NULL && v == 1);
        /* ... nor freeing the handle whose call made it. */
        ks_keychain_free(kc);
        kc = NULL;
        CHECK(ks_error_message(err) == m && strcmp(ks_error_message(err), copy) == 0);
        CHECK(ks_error_status(err) == KS_ERR_FORMAT);
        ks_error_free(err);
    }

    /* NULL error objects read as success; freeing NULL is a no-op. */
    CHECK(ks_error_status(NULL) == KS_OK);
    CHECK(ks_error_message(NULL) != NULL && ks_error_message(NULL)[0] == '\0');
    ks_error_free(NULL);

    /* NULL arguments are reported through err too. */
    ks_keychain *kout = SENT;
    EXPECT(ks_keychain_load(NULL, 4, NULL, &kout, E), KS_ERR_NULL_ARGUMENT);
    CHECK(strstr(h_msg, "NullArgument") != NULL);
    CHECK(kout == SENT);

    /* A message never repeats an identity it could not parse. */
    const char *bad_id = "AGE-SECRET-KEY-1SECRETSECRETSECRETSECRETSECRET";
    ks_root *r = SENT;
    EXPECT(ks_root_age_new(&bad_id, 1, NULL, 0, &r, E), KS_ERR_INVALID_INPUT);
    CHECK(h_msg[0] != '\0' && strstr(h_msg, "SECRETSECRET") == NULL);
    CHECK(r == SENT);
    /* Nor a passphrase it refuses. */
    EXPECT(ks_root_passphrase_new((const uint8_t *)"pass\xff-word-77", 11, 10, &r, E), KS_ERR_INVALID_INPUT);
    CHECK(strstr(h_msg, "word-77") == NULL);
    group_end(NULL);
}

/* Threads that fail (and succeed) at once: each gets its own objects. */
enum { ERR_THREADS = 16, ERR_ROUNDS = 200 };

typedef struct {
    const ks_keychain *kc;
    int id;
    int bad;
} err_arg;

static void *err_thread(void *p)
{
    err_arg *a = p;
    int rounds = g_quick ? 20 : ERR_ROUNDS;
    for (int i = 0; i < rounds; i++) {
        /* An input of this thread's own length: the message names it. */
        uint8_t junk[64];
        size_t n = (size_t)(a->id + 1);
        memset(junk, 0x02, sizeof junk);
        ks_error *err = NULL;
        ks_buffer out = sent_buf();
        ks_status st = ks_keychain_unseal(a->kc, junk, n, NULL, 0, &out, &err);
        char want[64];
        snprintf(want, sizeof want, "is %zu bytes", n);
        if (st != KS_ERR_FORMAT || err == NULL || ks_error_status(err) != KS_ERR_FORMAT ||
            strstr(ks_error_message(err), want) == NULL || !buf_untouched(out))
            a->bad++;
        /* A success between two reads of the object changes nothing. */
        const char *m = ks_error_message(err);
        ks_error *ok = (ks_error *)SENT;
        ks_buffer sealed = {NULL, 0};
        if (ks_keychain_seal(a->kc, junk, n, NULL, 0, &sealed, &ok) != KS_OK || ok != NULL)
            a->bad++;
        ks_buffer_free(&sealed);
        if (ks_error_message(err) != m || strstr(m, want) == NULL)
            a->bad++;
        ks_error_free(err);
    }
    return NULL;
}

static void group_error_threads(void)
{
    group_begin("error objects, 16 threads");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    pthread_t th[ERR_THREADS];
    err_arg args[ERR_THREADS];
    int started = 0;
    for (int i = 0; i < ERR_THREADS; i++) {
        args[i] = (err_arg){kc, i, 0};
        if (CHECK(pthread_create(&th[i], NULL, err_thread, &args[i]) == 0))
            started++;
    }
    int bad = 0;
    for (int i = 0; i < started; i++) {
        CHECK(pthread_join(th[i], NULL) == 0);
        bad += args[i].bad;
    }
    CHECK(started == ERR_THREADS);
    CHECK(bad == 0);
    ks_counters c;
    if (OK(ks_keychain_counters(kc, &c, E))) {
        int rounds = g_quick ? 20 : ERR_ROUNDS;
        CHECK(c.unseal_failed == (uint64_t)(ERR_THREADS * rounds) && c.seal == (uint64_t)(ERR_THREADS * rounds));
    }
    ks_keychain_free(kc);
    char extra[64];
    snprintf(extra, sizeof extra, "  (%d error objects)", ERR_THREADS * (g_quick ? 20 : ERR_ROUNDS));
    group_end(extra);
}

static void group_buffers_and_free(void)
{
    group_begin("buffers, _free, _clear");
    ks_keychain *kc = NULL;
    OK(ks_keychain_generate(NULL, &kc, E));
    /* Buffers: free NULL, free twice, empty results. */
    ks_buffer_free(NULL);
    ks_buffer empty = {NULL, 0};
    ks_buffer_free(&empty);
    CHECK(empty.data == NULL && empty.len == 0);
    ks_buffer sealed = sent_buf();
    if (OK(ks_keychain_seal(kc, (const uint8_t *)"abc", 3, NULL, 0, &sealed, E))) {
        CHECK(sealed.len == 3 + 33);
        ks_buffer_free(&sealed);
        CHECK(sealed.data == NULL && sealed.len == 0);
        ks_buffer_free(&sealed);
        CHECK(sealed.data == NULL && sealed.len == 0);
    }
    /* Empty plaintext, NULL with length 0: round trip to an empty buffer. */
    ks_buffer s2 = sent_buf(), o2 = sent_buf();
    if (OK(ks_keychain_seal(kc, NULL, 0, NULL, 0, &s2, E)) && CHECK(s2.len == 33) &&
        OK(ks_keychain_unseal(kc, s2.data, s2.len, NULL, 0, &o2, E)))
        CHECK(o2.data == NULL && o2.len == 0);
    ks_buffer_free(&s2);
    ks_buffer_free(&o2);
    /* Every _free and _clear accepts NULL; _clear accepts a zeroed struct, twice. */
    ks_keychain_free(NULL);
    ks_root_free(NULL);
    ks_envelope_clear(NULL);
    ks_metadata_clear(NULL);
    ks_error_free(NULL);
    ks_envelope zero_env;
    memset(&zero_env, 0, sizeof zero_env);
    ks_envelope_clear(&zero_env);
    ks_envelope_clear(&zero_env);
    ks_metadata zero_md = {NULL, 0};
    ks_metadata_clear(&zero_md);
    CHECK(zero_env.key_id == NULL && zero_md.entries == NULL);
    ks_keychain_free(kc);
    group_end(NULL);
}

void run_errors(void)
{
    group_status_names();
    group_error_objects();
    group_error_threads();
    group_buffers_and_free();
}
