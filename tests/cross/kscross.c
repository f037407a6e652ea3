/*
 * kscross in C: the cross-language harness tool (tests/cross/README.md).
 *
 * Same interface as core/examples/kscross.rs. A keystrata error prints the
 * kind's name on stdout (message on stderr) and exits with 10 + its code;
 * usage errors exit 2. Built by tests/cross/run.sh:
 *   cc -std=c11 tests/cross/kscross.c \
 *      $(pkg-config --cflags --libs keystrata-static) -ljansson
 * with PKG_CONFIG_PATH=target/release/pkgconfig (written by make lib).
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "keystrata.h"

static const char *g_op = "";

/* The error of the last call: every call below takes &err (die_ks prints it). */
static ks_error *err;

/* "KS_ERR_KEY_DISABLED" -> "KeyDisabled" (the Rust ErrorKind name). */
static void kind_name(ks_status st, char *out, size_t cap) {
    const char *n = ks_status_name((int)st);
    size_t j = 0;
    int upper = 1;
    if (strncmp(n, "KS_ERR_", 7) == 0) n += 7;
    for (; *n && j + 1 < cap; n++) {
        if (*n == '_') { upper = 1; continue; }
        out[j++] = upper ? (char)toupper((unsigned char)*n) : (char)tolower((unsigned char)*n);
        upper = 0;
    }
    out[j] = 0;
}

static void die_ks(ks_status st) {
    char name[64];
    kind_name(st, name, sizeof name);
    printf("%s\n", name);
    fflush(stdout);
    fprintf(stderr, "kscross-c: %s: %s: %s\n", g_op, name, ks_error_message(err));
    ks_error_free(err);
    exit(10 + (int)st);
}

static void die_usage(const char *msg, const char *detail) {
    fprintf(stderr, "kscross-c: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
    exit(2);
}

#define CHECK(call) do { ks_status st_ = (call); if (st_ != KS_OK) die_ks(st_); } while (0)

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die_usage("cannot read", path);
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) die_usage("out of memory", NULL);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) die_usage("out of memory", NULL);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) die_usage("cannot read", path);
    fclose(f);
    *len = n;
    return buf;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) die_usage("cannot write", path);
    if (len && fwrite(data, 1, len, f) != len) die_usage("cannot write", path);
    if (fclose(f) != 0) die_usage("cannot write", path);
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) die_usage("out of memory", NULL);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static ks_root *make_root(const char *spec) {
    ks_root *r = NULL;
    if (strncmp(spec, "age:", 4) == 0) {
        size_t len;
        uint8_t *text = read_file(spec + 4, &len);
        char *s = malloc(len + 1);
        if (!s) die_usage("out of memory", NULL);
        memcpy(s, text, len);
        s[len] = 0;
        const char *ids[1] = {s};
        CHECK(ks_root_age_new(ids, 1, NULL, 0, &r, &err));
        free(s);
        free(text);
    } else if (strncmp(spec, "pass:", 5) == 0) {
        CHECK(ks_root_passphrase_new((const uint8_t *)spec + 5, strlen(spec + 5), 10, &r, &err));
    } else {
        die_usage("bad root spec", spec);
    }
    return r;
}

static ks_keychain *load(const char *spec, const char *path) {
    ks_root *r = make_root(spec);
    ks_keychain *kc = NULL;
    CHECK(ks_keychain_load_file(path, r, &kc, &err));
    ks_root_free(r);
    return kc;
}

static char *to_hex(const uint8_t *b, size_t n) {
    char *s = malloc(2 * n + 1);
    if (!s) die_usage("out of memory", NULL);
    for (size_t i = 0; i < n; i++) sprintf(s + 2 * i, "%02x", b[i]);
    s[2 * n] = 0;
    return s;
}

static uint8_t *from_hex(const char *s, size_t *n) {
    size_t l = strlen(s);
    if (l % 2) die_usage("odd-length hex", NULL);
    uint8_t *b = malloc(l / 2 + 1);
    if (!b) die_usage("out of memory", NULL);
    for (size_t i = 0; i < l / 2; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
            sscanf(s + 2 * i, "%2x", &v) != 1)
            die_usage("bad hex", NULL);
        b[i] = (uint8_t)v;
    }
    *n = l / 2;
    return b;
}

static void write_json(const char *path, json_t *j) {
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    if (!s) die_usage("cannot encode JSON", NULL);
    write_file(path, s, strlen(s));
    free(s);
    json_decref(j);
}

static void write_envelope(const char *path, const ks_envelope *env) {
    char *h = to_hex(env->ciphertext, env->ciphertext_len);
    json_t *j = json_pack("{s:s, s:I, s:s, s:s}", "key_id", env->key_id, "key_version",
                          (json_int_t)env->key_version, "provider", env->provider, "ciphertext_hex", h);
    if (!j) die_usage("cannot build JSON", NULL);
    write_json(path, j);
    free(h);
}

static void write_metadata(const char *path, const ks_envelope *env) {
    ks_metadata md;
    CHECK(ks_envelope_to_metadata(env, &md, &err));
    json_t *j = json_object();
    for (size_t i = 0; i < md.count; i++)
        json_object_set_new(j, md.entries[i].name, json_string(md.entries[i].value));
    ks_metadata_clear(&md);
    write_json(path, j);
}

/* An envelope read from a file: filled by the library (metadata form,
 * released with ks_envelope_clear) or by us (field form, our copies). */
typedef struct {
    ks_envelope env;
    int ours;
} read_env;

static void read_env_free(read_env *e) {
    if (e->ours) {
        free(e->env.key_id);
        free(e->env.provider);
        free(e->env.ciphertext);
    } else {
        ks_envelope_clear(&e->env);
    }
}

static read_env read_envelope(const char *path) {
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j || !json_is_object(j)) die_usage("not a JSON object", path);
    read_env r;
    memset(&r, 0, sizeof r);
    if (json_object_get(j, "ciphertext_hex")) {
        const char *key_id, *provider, *ct_hex;
        json_int_t ver;
        if (json_unpack(j, "{s:s, s:I, s:s, s:s}", "key_id", &key_id, "key_version", &ver,
                        "provider", &provider, "ciphertext_hex", &ct_hex) != 0 ||
            ver < 0 || ver > UINT32_MAX)
            die_usage("bad envelope JSON", path);
        r.ours = 1;
        r.env.key_id = strdup(key_id);
        r.env.provider = strdup(provider);
        r.env.key_version = (uint32_t)ver;
        r.env.ciphertext = from_hex(ct_hex, &r.env.ciphertext_len);
        if (!r.env.key_id || !r.env.provider) die_usage("out of memory", NULL);
    } else {
        size_t count = json_object_size(j), i = 0;
        const char **names = calloc(count + 1, sizeof *names);
        const char **values = calloc(count + 1, sizeof *values);
        if (!names || !values) die_usage("out of memory", NULL);
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (!json_is_string(v)) die_usage("metadata values must be strings", path);
            names[i] = k;
            values[i] = json_string_value(v);
            i++;
        }
        CHECK(ks_envelope_from_metadata(names, values, count, &r.env, &err));
        free(names);
        free(values);
    }
    json_decref(j);
    return r;
}

static void fixtures(ks_keychain *kc, const char *dir, const char *v, uint8_t key_byte) {
    char pt[32], name[64];
    snprintf(pt, sizeof pt, "fixture %s", v);
    const uint8_t *aad = (const uint8_t *)"fixture";
    ks_buffer b;
    CHECK(ks_keychain_seal(kc, (const uint8_t *)pt, strlen(pt), aad, 7, &b, &err));
    snprintf(name, sizeof name, "%s.sealed", v);
    char *p = join(dir, name);
    write_file(p, b.data, b.len);
    free(p);
    ks_buffer_free(&b);
    CHECK(ks_keychain_encrypt(kc, (const uint8_t *)pt, strlen(pt), aad, 7, &b, &err));
    snprintf(name, sizeof name, "%s.encrypted", v);
    p = join(dir, name);
    write_file(p, b.data, b.len);
    free(p);
    ks_buffer_free(&b);
    uint8_t key[32];
    memset(key, key_byte, sizeof key);
    ks_envelope env;
    CHECK(ks_keychain_wrap_key(kc, key, sizeof key, aad, 7, &env, &err));
    snprintf(name, sizeof name, "%s.env.json", v);
    p = join(dir, name);
    write_envelope(p, &env);
    free(p);
    ks_envelope_clear(&env);
}

static void gen(const char *dir, const ks_root *root) {
    ks_keychain *kc = NULL;
    CHECK(ks_keychain_generate(NULL, &kc, &err));
    ks_key_info pi;
    CHECK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &pi, &err));
    uint32_t v1 = pi.key_id;
    fixtures(kc, dir, "v1", 0x11);
    CHECK(ks_keychain_rotate(kc, NULL, &err));
    fixtures(kc, dir, "v2", 0x22);
    CHECK(ks_keychain_rotate(kc, NULL, &err));
    CHECK(ks_keychain_disable(kc, v1, &err));
    char idtxt[32];
    snprintf(idtxt, sizeof idtxt, "%" PRIu32 "\n", v1);
    char *p = join(dir, "disabled_key_id");
    write_file(p, idtxt, strlen(idtxt));
    free(p);
    p = join(dir, "keychain.age");
    CHECK(ks_keychain_save_file(kc, p, root, &err));
    free(p);
    ks_keychain_free(kc);
}

static void aead_op(const char *op, const ks_keychain *kc, const uint8_t *in, size_t n,
                    const char *aad, ks_buffer *out) {
    const uint8_t *a = (const uint8_t *)aad;
    size_t al = strlen(aad);
    if (!strcmp(op, "seal")) CHECK(ks_keychain_seal(kc, in, n, a, al, out, &err));
    else if (!strcmp(op, "unseal")) CHECK(ks_keychain_unseal(kc, in, n, a, al, out, &err));
    else if (!strcmp(op, "encrypt")) CHECK(ks_keychain_encrypt(kc, in, n, a, al, out, &err));
    else CHECK(ks_keychain_decrypt(kc, in, n, a, al, out, &err));
}

/* A ks_algorithm by the library's own name (ks_algorithm_name). A name it
 * does not know is 0, which the library rejects with KS_ERR_INVALID_INPUT,
 * as the other languages do. */
static uint32_t algorithm_named(const char *name) {
    for (int a = 1; a < 64; a++) {
        const char *n = ks_algorithm_name(a);
        if (n && !strcmp(n, name)) return (uint32_t)a;
    }
    return 0;
}

/* The command line's format words; another word is 0 (KS_ERR_INVALID_INPUT). */
static uint32_t sig_format_named(const char *name) {
    if (!strcmp(name, "der")) return KS_SIG_DER;
    if (!strcmp(name, "raw")) return KS_SIG_RAW;
    return 0;
}

static uint32_t pub_format_named(const char *name) {
    if (!strcmp(name, "pem")) return KS_PUBKEY_PEM;
    if (!strcmp(name, "der")) return KS_PUBKEY_DER;
    if (!strcmp(name, "raw")) return KS_PUBKEY_RAW;
    if (!strcmp(name, "minisign")) return KS_PUBKEY_MINISIGN;
    return 0;
}

/* A ks_stream_format by the library's own name (ks_stream_format_name);
 * another name is 0, which the library rejects with KS_ERR_INVALID_INPUT. */
static uint32_t stream_format_named(const char *name) {
    for (int f = 1; f < 64; f++) {
        const char *n = ks_stream_format_name(f);
        if (n && !strcmp(n, name)) return (uint32_t)f;
    }
    return 0;
}

/* How much stream-encrypt hands the encryptor at a time, and stream-decrypt
 * pushes to the decryptor: odd sizes, so calls straddle segment boundaries
 * (the same in every language's tool). */
enum { STREAM_WRITE_CHUNK = 10007, STREAM_READ_CHUNK = 8191 };

static FILE *open_or_die(const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (!f) die_usage(mode[0] == 'r' ? "cannot read" : "cannot write", path);
    return f;
}

static void fwrite_or_die(const void *p, size_t n, FILE *f, const char *path) {
    if (n && fwrite(p, 1, n, f) != n) die_usage("cannot write", path);
}

/* Grows *buf to hold n bytes. */
static void reserve(uint8_t **buf, size_t *cap, size_t n) {
    if (n <= *cap) return;
    *buf = realloc(*buf, n);
    if (!*buf) die_usage("out of memory", NULL);
    *cap = n;
}

/* IN through ks_stream_encrypt_update a chunk at a time, then
 * ks_stream_encrypt_finish, into OUT; each call's output sized first with
 * out == NULL (the exact length). */
static void stream_encrypt(const ks_keychain *kc, const char *in, const char *aad, const char *outp) {
    ks_stream_encryptor *enc = NULL;
    CHECK(ks_stream_encryptor_new(kc, (const uint8_t *)aad, strlen(aad), &enc, &err));
    FILE *src = open_or_die(in, "rb"), *dst = open_or_die(outp, "wb");
    uint8_t chunk[STREAM_WRITE_CHUNK];
    uint8_t *ct = NULL;
    size_t cap = 0, need = 0, n;
    while ((n = fread(chunk, 1, sizeof chunk, src)) > 0) {
        CHECK(ks_stream_encrypt_update(enc, chunk, n, NULL, 0, &need, &err));
        reserve(&ct, &cap, need + 1); /* never NULL: out == NULL is a query, consuming nothing */
        size_t got = 0;
        CHECK(ks_stream_encrypt_update(enc, chunk, n, ct, cap, &got, &err));
        if (got != need) die_usage("ks_stream_encrypt_update: not the length it reported", NULL);
        fwrite_or_die(ct, got, dst, outp);
    }
    if (ferror(src)) die_usage("cannot read", in);
    CHECK(ks_stream_encrypt_finish(enc, NULL, 0, &need, &err));
    reserve(&ct, &cap, need);
    size_t got = 0;
    CHECK(ks_stream_encrypt_finish(enc, ct, cap, &got, &err));
    if (got != need) die_usage("ks_stream_encrypt_finish: not the length it reported", NULL);
    fwrite_or_die(ct, got, dst, outp);
    if (fclose(dst) != 0) die_usage("cannot write", outp);
    fclose(src);
    free(ct);
    ks_stream_encryptor_free(enc);
}

/* The stream in IN pushed to ks_stream_decrypt_update a chunk at a time
 * (room for the chunk and what is buffered always suffices), then
 * ks_stream_decrypt_finish; the plaintext to OUT. */
static void stream_decrypt(const ks_keychain *kc, const char *in, const char *aad, const char *outp) {
    ks_stream_decryptor *dec = NULL;
    CHECK(ks_stream_decryptor_new(kc, (const uint8_t *)aad, strlen(aad), &dec, &err));
    FILE *src = open_or_die(in, "rb"), *dst = open_or_die(outp, "wb");
    uint8_t chunk[STREAM_READ_CHUNK];
    uint8_t *pt = NULL;
    size_t cap = 0, n, got;
    while ((n = fread(chunk, 1, sizeof chunk, src)) > 0) {
        reserve(&pt, &cap, n + ks_stream_decryptor_buffered(dec));
        CHECK(ks_stream_decrypt_update(dec, chunk, n, pt, cap, &got, &err));
        fwrite_or_die(pt, got, dst, outp);
    }
    if (ferror(src)) die_usage("cannot read", in);
    size_t need = 0;
    CHECK(ks_stream_decrypt_finish(dec, NULL, 0, &need, &err));
    reserve(&pt, &cap, need + 1);
    CHECK(ks_stream_decrypt_finish(dec, pt, cap, &got, &err));
    if (got != need) die_usage("ks_stream_decrypt_finish: not the length it reported", NULL);
    fwrite_or_die(pt, got, dst, outp);
    if (fclose(dst) != 0) die_usage("cannot write", outp);
    fclose(src);
    free(pt);
    ks_stream_decryptor_free(dec);
}

/* The ks_stream_read_at_fn over a file descriptor. */
static int read_at_fd(void *user_data, uint64_t offset, uint8_t *buf, size_t len, size_t *out_n) {
    int fd = *(const int *)user_data;
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)(offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return 1;
        if (r == 0) break;
        got += (size_t)r;
    }
    *out_n = got;
    return 0;
}

/* LEN bytes of plaintext at OFFSET of the stream in IN (fewer at the end),
 * with ks_stream_seekable_read_at, into OUT. */
static void stream_read_at(const ks_keychain *kc, const char *in, const char *aad, uint64_t offset, size_t len,
                           const char *outp) {
    int fd = open(in, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) die_usage("cannot read", in);
    ks_stream_seekable *s = NULL;
    CHECK(ks_stream_seekable_new(kc, (const uint8_t *)aad, strlen(aad), read_at_fd, &fd, (uint64_t)st.st_size,
                                 &s, &err));
    uint8_t *pt = malloc(len ? len : 1);
    if (!pt) die_usage("out of memory", NULL);
    size_t got = 0;
    CHECK(ks_stream_seekable_read_at(s, offset, pt, len, &got, &err));
    write_file(outp, pt, got);
    free(pt);
    ks_stream_seekable_free(s);
    close(fd);
}

/* A decimal argument, all digits. */
static unsigned long long decimal(const char *s, const char *what) {
    char *end;
    errno = 0;
    if (s[0] < '0' || s[0] > '9') die_usage(what, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) die_usage(what, s);
    return v;
}

int main(int argc, char **argv) {
    const char *op = argc > 1 ? argv[1] : "";
    int n = argc - 1;
    g_op = op;
    if (!strcmp(op, "gen-age") && n == 2) {
        ks_root *r = NULL;
        CHECK(ks_root_age_generate(&r, &err));
        ks_buffer id, rec;
        CHECK(ks_root_age_identity(r, 0, &id, &err));
        CHECK(ks_root_age_recipient(r, 0, &rec, &err));
        char *p = join(argv[2], "identity.txt");
        FILE *f = fopen(p, "wb");
        if (!f) die_usage("cannot write", p);
        fprintf(f, "# public key: %.*s\n%.*s\n", (int)rec.len, (const char *)rec.data, (int)id.len,
                (const char *)id.data);
        if (fclose(f) != 0) die_usage("cannot write", p);
        free(p);
        ks_buffer_free(&id);
        ks_buffer_free(&rec);
        gen(argv[2], r);
        ks_root_free(r);
    } else if (!strcmp(op, "gen-pass") && n == 3) {
        ks_root *r = NULL;
        CHECK(ks_root_passphrase_new((const uint8_t *)argv[3], strlen(argv[3]), 10, &r, &err));
        gen(argv[2], r);
        ks_root_free(r);
    } else if ((!strcmp(op, "seal") || !strcmp(op, "unseal") || !strcmp(op, "encrypt") ||
                !strcmp(op, "decrypt")) && n == 6) {
        ks_keychain *kc = load(argv[2], argv[3]);
        size_t len;
        uint8_t *in = read_file(argv[4], &len);
        ks_buffer out;
        aead_op(op, kc, in, len, argv[5], &out);
        write_file(argv[6], out.data, out.len);
        ks_buffer_free(&out);
        free(in);
        ks_keychain_free(kc);
    } else if (!strcmp(op, "wrap") && n == 7) {
        ks_keychain *kc = load(argv[2], argv[3]);
        size_t len;
        uint8_t *key = read_file(argv[4], &len);
        ks_envelope env;
        CHECK(ks_keychain_wrap_key(kc, key, len, (const uint8_t *)argv[5], strlen(argv[5]), &env, &err));
        write_envelope(argv[6], &env);
        write_metadata(argv[7], &env);
        ks_envelope_clear(&env);
        free(key);
        ks_keychain_free(kc);
    } else if (!strcmp(op, "unwrap") && n == 6) {
        ks_keychain *kc = load(argv[2], argv[3]);
        read_env env = read_envelope(argv[4]);
        ks_buffer out;
        CHECK(ks_keychain_unwrap_key(kc, &env.env, (const uint8_t *)argv[5], strlen(argv[5]), &out, &err));
        write_file(argv[6], out.data, out.len);
        ks_buffer_free(&out);
        read_env_free(&env);
        ks_keychain_free(kc);
    } else if (!strcmp(op, "derive") && n == 7) {
        ks_keychain *kc = load(argv[2], argv[3]);
        char *end;
        errno = 0;
        if (argv[6][0] < '0' || argv[6][0] > '9') die_usage("bad epoch", argv[6]);
        unsigned long long epoch = strtoull(argv[6], &end, 10);
        if (errno || *end) die_usage("bad epoch", argv[6]);
        ks_buffer out;
        CHECK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)argv[4], strlen(argv[4]),
                                            (const uint8_t *)argv[5], strlen(argv[5]),
                                            (uint64_t)epoch, &out, &err));
        write_file(argv[7], out.data, out.len);
        ks_buffer_free(&out);
        ks_keychain_free(kc);
    } else if (!strcmp(op, "destroy") && n == 5) {
        ks_root *r = make_root(argv[2]);
        ks_keychain *kc = NULL;
        CHECK(ks_keychain_load_file(argv[3], r, &kc, &err));
        char *end;
        unsigned long id = strtoul(argv[4], &end, 10);
        if (*end || id > UINT32_MAX) die_usage("bad key id", argv[4]);
        CHECK(ks_keychain_destroy(kc, (uint32_t)id, &err));
        CHECK(ks_keychain_save_file(kc, argv[5], r, &err));
        ks_keychain_free(kc);
        ks_root_free(r);
    } else if (!strcmp(op, "encrypt-portable") && n == 6) {
        ks_root *r = make_root(argv[2]);
        ks_keychain *kc = NULL;
        CHECK(ks_keychain_open(argv[3], r, NULL, &kc, &err));
        size_t len;
        uint8_t *in = read_file(argv[4], &len);
        ks_buffer out;
        CHECK(ks_keychain_encrypt_portable(kc, in, len, (const uint8_t *)argv[5], strlen(argv[5]), &out, &err));
        write_file(argv[6], out.data, out.len);
        ks_buffer_free(&out);
        free(in);
        ks_keychain_free(kc);
        ks_root_free(r);
    } else if (!strcmp(op, "decrypt-portable") && n == 5) {
        ks_root *r = make_root(argv[2]);
        size_t len;
        uint8_t *in = read_file(argv[3], &len);
        ks_buffer out;
        CHECK(ks_root_decrypt_portable(r, in, len, (const uint8_t *)argv[4], strlen(argv[4]), &out, &err));
        write_file(argv[5], out.data, out.len);
        ks_buffer_free(&out);
        free(in);
        ks_root_free(r);
    } else if (!strcmp(op, "add-signing") && n == 4) {
        ks_root *r = make_root(argv[2]);
        ks_keychain *kc = NULL;
        CHECK(ks_keychain_load_file(argv[3], r, &kc, &err));
        CHECK(ks_keychain_rotate_signing(kc, algorithm_named(argv[4]), NULL, &err));
        CHECK(ks_keychain_save_file(kc, argv[3], r, &err));
        ks_keychain_free(kc);
        ks_root_free(r);
    } else if (!strcmp(op, "sign") && n == 6) {
        ks_keychain *kc = load(argv[2], argv[3]);
        size_t len, sig_len = 0;
        uint8_t *msg = read_file(argv[5], &len);
        uint8_t sig[KS_MAX_SIGNATURE_LEN];
        CHECK(ks_keychain_sign(kc, msg, len, sig_format_named(argv[4]), sig, sizeof sig, &sig_len, NULL, &err));
        write_file(argv[6], sig, sig_len);
        free(msg);
        ks_keychain_free(kc);
    } else if (!strcmp(op, "verify") && n == 6) {
        ks_keychain *kc = load(argv[2], argv[3]);
        size_t len, sig_len;
        uint8_t *msg = read_file(argv[4], &len);
        uint8_t *sig = read_file(argv[5], &sig_len);
        ks_key_info info;
        CHECK(ks_keychain_verify(kc, msg, len, sig, sig_len, &info, &err));
        char idtxt[32];
        snprintf(idtxt, sizeof idtxt, "%" PRIu32 "\n", info.key_id);
        write_file(argv[6], idtxt, strlen(idtxt));
        free(sig);
        free(msg);
        ks_keychain_free(kc);
    } else if (!strcmp(op, "pubkey") && n == 5) {
        ks_keychain *kc = load(argv[2], argv[3]);
        ks_key_info pi;
        CHECK(ks_keychain_primary(kc, KS_PURPOSE_SIGN, &pi, &err));
        ks_buffer out;
        CHECK(ks_keychain_public_key(kc, pi.key_id, pub_format_named(argv[4]), &out, &err));
        write_file(argv[5], out.data, out.len);
        ks_buffer_free(&out);
        ks_keychain_free(kc);
    } else if (!strcmp(op, "verify-pub") && n == 6) {
        size_t pl, ml, sl;
        uint8_t *pub = read_file(argv[3], &pl);
        uint8_t *msg = read_file(argv[4], &ml);
        uint8_t *sig = read_file(argv[5], &sl);
        CHECK(ks_verify_signature(algorithm_named(argv[2]), pub, pl, msg, ml, sig, sl, &err));
        write_file(argv[6], "ok\n", 3);
        free(sig);
        free(msg);
        free(pub);
    } else if (!strcmp(op, "add-stream") && n == 4) {
        ks_root *r = make_root(argv[2]);
        ks_keychain *kc = NULL;
        CHECK(ks_keychain_load_file(argv[3], r, &kc, &err));
        CHECK(ks_keychain_rotate_streaming(kc, stream_format_named(argv[4]), NULL, &err));
        CHECK(ks_keychain_save_file(kc, argv[3], r, &err));
        ks_keychain_free(kc);
        ks_root_free(r);
    } else if ((!strcmp(op, "stream-encrypt") || !strcmp(op, "stream-decrypt")) && n == 6) {
        ks_keychain *kc = load(argv[2], argv[3]);
        if (!strcmp(op, "stream-encrypt")) stream_encrypt(kc, argv[4], argv[5], argv[6]);
        else stream_decrypt(kc, argv[4], argv[5], argv[6]);
        ks_keychain_free(kc);
    } else if (!strcmp(op, "stream-read-at") && n == 8) {
        unsigned long long offset = decimal(argv[6], "bad offset"), len = decimal(argv[7], "bad length");
        if (len > SIZE_MAX) die_usage("bad length", argv[7]);
        ks_keychain *kc = load(argv[2], argv[3]);
        stream_read_at(kc, argv[4], argv[5], (uint64_t)offset, (size_t)len, argv[8]);
        ks_keychain_free(kc);
    } else if (!strcmp(op, "keys") && n == 3) {
        ks_keychain *kc = load(argv[2], argv[3]);
        size_t count = 0;
        ks_key_info infos[64];
        CHECK(ks_keychain_keys(kc, infos, 64, &count, &err));
        /* The names are the library's (ks_purpose_name, ks_key_status_name):
         * a signing key lists as "sign" here as in every language. */
        for (size_t i = 0; i < count; i++) {
            const char *purpose = ks_purpose_name((int)infos[i].purpose);
            const char *status = ks_key_status_name((int)infos[i].status);
            printf("%" PRIu32 " %" PRIu32 " %s %s %d\n", infos[i].key_id, infos[i].version,
                   purpose ? purpose : "?", status ? status : "?", infos[i].primary ? 1 : 0);
        }
        ks_keychain_free(kc);
    } else {
        die_usage("usage: see tests/cross/README.md", NULL);
    }
    return 0;
}
