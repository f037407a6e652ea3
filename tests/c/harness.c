/*
 * The C suite's shared harness: see harness.h.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

atomic_int g_pass;
atomic_int g_fail;
_Thread_local const char *g_ctx = "";
bool g_quick;
char g_tmpdir[256];
unsigned char g_sentinel_storage[8];
_Thread_local ks_error *h_err;
_Thread_local char h_msg[512];
char h_unset[1];

bool check_(bool ok, const char *expr, const char *file, int line)
{
    if (ok) {
        atomic_fetch_add(&g_pass, 1);
    } else {
        atomic_fetch_add(&g_fail, 1);
        fprintf(stderr, "%s:%d: FAILED: %s%s%s%s\n", file, line, expr, g_ctx[0] ? "  [" : "", g_ctx,
                g_ctx[0] ? "]" : "");
    }
    return ok;
}

bool require_(bool ok, const char *expr, const char *file, int line)
{
    if (!ok) {
        atomic_fetch_add(&g_fail, 1);
        fprintf(stderr, "%s:%d: bad test input: %s%s%s\n", file, line, expr, g_ctx[0] ? "  case: " : "", g_ctx);
    }
    return ok;
}

/*
 * One assertion: `got` must equal `want`; with via_err, the error slot must
 * agree with it (NULL after a success; after a failure an object with the
 * same status and a message). Frees the object and keeps its message.
 */
bool expect_(ks_status got, ks_status want, bool via_err, const char *call, const char *file, int line)
{
    ks_error *e = h_err;
    h_err = NULL;
    const char *problem = NULL;
    h_msg[0] = '\0';
    if (via_err) {
        if (e == H_UNSET)
            problem = "*err was not written";
        else if (got == KS_OK && e != NULL)
            problem = "an error object after a success";
        else if (got != KS_OK && e == NULL)
            problem = "no error object after a failure";
        else if (e != NULL && ks_error_status(e) != got)
            problem = "the error object's status differs from the one returned";
        else if (e != NULL && ks_error_message(e)[0] == '\0')
            problem = "an empty message";
        if (e != NULL && e != H_UNSET) {
            snprintf(h_msg, sizeof h_msg, "%s", ks_error_message(e));
            ks_error_free(e);
        }
    } else if (e != H_UNSET) {
        problem = "EXPECT_ST on a call that wrote *err (use EXPECT)";
    }
    if (got == want && problem == NULL) {
        atomic_fetch_add(&g_pass, 1);
        return true;
    }
    atomic_fetch_add(&g_fail, 1);
    fprintf(stderr, "%s:%d: FAILED: %s\n    got %s, want %s; message \"%s\"%s%s%s%s\n", file, line, call,
            ks_status_name((int)got), ks_status_name((int)want), h_msg, problem ? " (" : "", problem ? problem : "",
            problem ? ")" : "", g_ctx[0] ? "" : "");
    if (g_ctx[0])
        fprintf(stderr, "    case: %s\n", g_ctx);
    return false;
}

static int g_group_pass, g_group_fail;
static const char *g_group;

void group_begin(const char *name)
{
    g_group = name;
    g_group_pass = atomic_load(&g_pass);
    g_group_fail = atomic_load(&g_fail);
    g_ctx = "";
}

void group_end(const char *extra)
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

ks_buffer sent_buf(void)
{
    ks_buffer b = {(uint8_t *)SENT, SENT_LEN};
    return b;
}

bool buf_untouched(ks_buffer b)
{
    return b.data == (uint8_t *)SENT && b.len == SENT_LEN;
}

bool all_zero(const uint8_t *p, size_t n)
{
    return all_byte(p, n, 0);
}

bool all_byte(const uint8_t *p, size_t n, uint8_t b)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != b)
            return false;
    return true;
}

uint32_t sealed_key_id(ks_buffer b)
{
    return b.len >= 5 ? be32(b.data + 1) : 0;
}

void bytes_free(bytes_t *b)
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
bytes_t hex(const char *s)
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

bytes_t base64(const char *s)
{
    const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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

bool buf_eq(ks_buffer got, const uint8_t *want, size_t want_len)
{
    if (got.len != want_len)
        return false;
    if (want_len == 0)
        return got.data == NULL; /* documented: an empty result has data == NULL */
    return memcmp(got.data, want, want_len) == 0;
}

uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* JSON accessors that fail the suite (not crash) on a schema surprise. */
const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!REQUIRE(s != NULL)) {
        fprintf(stderr, "    missing string field \"%s\"\n", key);
        return "";
    }
    return s;
}

long long jint(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!REQUIRE(json_is_integer(v))) {
        fprintf(stderr, "    missing integer field \"%s\"\n", key);
        return 0;
    }
    return (long long)json_integer_value(v);
}

json_t *jarr(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!REQUIRE(json_is_array(v))) {
        fprintf(stderr, "    missing array field \"%s\"\n", key);
        return NULL;
    }
    return v;
}

json_t *load_json(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!REQUIRE(j != NULL))
        fprintf(stderr, "    %s: %s (line %d)\n", path, err.text, err.line);
    return j;
}

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void rm_tmpdir(void)
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

bytes_t read_file(const char *path)
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

ks_purpose purpose_of(const char *s)
{
    return strcmp(s, "encrypt") == 0 ? KS_PURPOSE_ENCRYPT
           : strcmp(s, "derive") == 0 ? KS_PURPOSE_DERIVE
                                      : KS_PURPOSE_NONE;
}

ks_key_status status_of(const char *s)
{
    return strcmp(s, "enabled") == 0    ? KS_KEY_ENABLED
           : strcmp(s, "disabled") == 0 ? KS_KEY_DISABLED
                                        : KS_KEY_DESTROYED;
}

void ev_rec_init(ev_rec *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
}

void ev_cb(const ks_event *e, void *user_data)
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

int ev_count(ev_rec *r, ks_event_kind k)
{
    pthread_mutex_lock(&r->mu);
    int n = r->by_kind[k];
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* The last event of kind k, if any. */
bool ev_last(ev_rec *r, ks_event_kind k, ks_event *out)
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

void noop_cb(const ks_event *e, void *u)
{
    (void)e;
    (void)u;
}
