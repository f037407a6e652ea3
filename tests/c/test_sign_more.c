/*
 * The rest of signing through the C ABI: minisign with the keychain and
 * with a public key alone (both ways with the real /usr/bin/minisign),
 * trust files (ks_trusted_keys), the keychain's signing primary as a
 * ks_signer, and hostile arguments. The rules are the core's
 * (core/src/sign/, core/tests/); here the C mapping and real bytes.
 * The PKCS#11 ks_signer runs against SoftHSM2 in test_device_roots.c.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const uint8_t DATA[] = "keystrata-1.2.3.tar.gz contents";
#define DATA_LEN (sizeof DATA - 1)
#define MINISIGN "/usr/bin/minisign"

/* A NUL-terminated copy of a library buffer (text without a NUL). */
static char *cstr_of(ks_buffer b)
{
    char *s = malloc(b.len + 1);
    if (!s)
        abort();
    if (b.len)
        memcpy(s, b.data, b.len);
    s[b.len] = '\0';
    return s;
}

static bool buf_has(ks_buffer b, const char *needle)
{
    char *s = cstr_of(b);
    bool found = strstr(s, needle) != NULL;
    free(s);
    return found;
}

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/sm-%s", g_tmpdir, name);
}

static bool write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Runs a shell command quietly; its exit status (-1 if it did not run). */
static int run(const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
    int st = system(full);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* The base64 of a PEM's body: its lines between the BEGIN and END lines,
 * joined (the DER SubjectPublicKeyInfo, as a trust file holds it). */
static void pem_body(ks_buffer pem, char *out, size_t cap)
{
    size_t o = 0;
    char *s = cstr_of(pem);
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "-----", 5) == 0)
            continue;
        size_t l = strlen(line);
        if (o + l + 1 > cap)
            break;
        memcpy(out + o, line, l);
        o += l;
    }
    out[o] = '\0';
    free(s);
}

/* The base64 line (second line) of a minisign public key text. */
static void minisign_line(ks_buffer pub, char *out, size_t cap)
{
    char *s = cstr_of(pub);
    char *nl = strchr(s, '\n');
    const char *line = nl ? nl + 1 : s;
    snprintf(out, cap, "%.*s", (int)strcspn(line, "\r\n"), line);
    free(s);
}

/* ------------------------------------------------------------------ */

static void group_minisign_keychain(void)
{
    group_begin("sign_more: minisign with the keychain and a public key alone");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    ks_buffer sig = sent_buf();
    EXPECT(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, "c", &sig, E), KS_ERR_UNKNOWN_KEY);
    OK(ks_keychain_rotate_signing(kc, KS_ALG_ECDSA_P256, NULL, E));
    EXPECT(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, "c", &sig, E), KS_ERR_UNSUPPORTED);
    CHECK(buf_untouched(sig));
    ks_key_info ed;
    if (!OK(ks_keychain_rotate_signing(kc, KS_ALG_ED25519, &ed, E))) {
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    ks_counters c0, c1;
    OK(ks_keychain_counters(kc, &c0, E));
    const char *comment = "timestamp:1767225600\tfile:keystrata-1.2.3.tar.gz";
    if (OK(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, comment, &sig, E))) {
        CHECK(sig.len > 19 && memcmp(sig.data, "untrusted comment: ", 19) == 0);
        CHECK(buf_has(sig, "\ntrusted comment: timestamp:1767225600\tfile:keystrata-1.2.3.tar.gz\n"));
        CHECK(memchr(sig.data, '\0', sig.len) == NULL);
        OK(ks_keychain_counters(kc, &c1, E));
        CHECK(c1.sign == c0.sign + 1);
        ks_key_info who;
        if (OK(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, sig.data, sig.len, &who, E)))
            CHECK(who.key_id == ed.key_id && who.algorithm == KS_ALG_ED25519);
        OK(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, sig.data, sig.len, NULL, E));
        EXPECT(ks_keychain_verify_minisign(kc, DATA, DATA_LEN - 1, sig.data, sig.len, NULL, E),
               KS_ERR_AUTHENTICATION);
        /* With the public key alone; the comment comes back. */
        ks_buffer pub = {0};
        if (OK(ks_keychain_public_key(kc, ed.key_id, KS_PUBKEY_MINISIGN, &pub, E))) {
            char *pk = cstr_of(pub);
            ks_buffer tc = sent_buf();
            if (OK(ks_minisign_verify(pk, DATA, DATA_LEN, sig.data, sig.len, &tc, E)))
                CHECK(buf_eq(tc, (const uint8_t *)comment, strlen(comment)));
            ks_buffer_free(&tc);
            OK(ks_minisign_verify(pk, DATA, DATA_LEN, sig.data, sig.len, NULL, E));
            tc = sent_buf();
            EXPECT(ks_minisign_verify(pk, DATA, 3, sig.data, sig.len, &tc, E), KS_ERR_AUTHENTICATION);
            CHECK(buf_untouched(tc));
            /* The base64 line alone, as minisign -P takes it. */
            char line[128];
            minisign_line(pub, line, sizeof line);
            OK(ks_minisign_verify(line, DATA, DATA_LEN, sig.data, sig.len, NULL, E));
            /* The trusted comment is signed: change it and it fails. */
            char *t = cstr_of(sig);
            char *at = strstr(t, "timestamp:1");
            if (CHECK(at != NULL)) {
                at[10] = '2';
                EXPECT(ks_minisign_verify(pk, DATA, DATA_LEN, (const uint8_t *)t, strlen(t), NULL, E),
                       KS_ERR_AUTHENTICATION);
                EXPECT(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, (const uint8_t *)t, strlen(t), NULL, E),
                       KS_ERR_AUTHENTICATION);
            }
            free(t);
            free(pk);
        }
        ks_buffer_free(&pub);
        /* Disabling the key (once another is primary) revokes its
         * minisign signatures here. */
        OK(ks_keychain_rotate_signing(kc, KS_ALG_ED25519, NULL, E));
        OK(ks_keychain_disable(kc, ed.key_id, E));
        EXPECT(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, sig.data, sig.len, NULL, E), KS_ERR_UNKNOWN_KEY);
        OK(ks_keychain_enable(kc, ed.key_id, E));
        OK(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, sig.data, sig.len, NULL, E));
    }
    ks_buffer_free(&sig);
    /* Comments minisign cannot carry. */
    ks_buffer b = sent_buf();
    EXPECT(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, "two\nlines", &b, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, "\x1b[31m", &b, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, "\xff\xfe", &b, E), KS_ERR_INVALID_INPUT);
    char *long_comment = malloc(9000);
    memset(long_comment, 'x', 8999);
    long_comment[8999] = '\0';
    EXPECT(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, long_comment, &b, E), KS_ERR_INVALID_INPUT);
    long_comment[8173] = '\0'; /* the most minisign -V reads */
    if (OK(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, long_comment, &b, E)))
        OK(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, b.data, b.len, NULL, E));
    ks_buffer_free(&b);
    free(long_comment);
    /* The empty message and the empty comment. */
    b = (ks_buffer){0};
    if (OK(ks_keychain_sign_minisign(kc, NULL, 0, "", &b, E)))
        OK(ks_keychain_verify_minisign(kc, NULL, 0, b.data, b.len, NULL, E));
    ks_buffer_free(&b);
    ks_keychain_free(kc);
    group_end(NULL);
}

/* ------------------------------------------------------------------ */

static void group_minisign_cli(void)
{
    group_begin("sign_more: the real minisign, both ways");
    if (!CHECK(access(MINISIGN, X_OK) == 0)) {
        group_end("minisign is not installed (apt minisign)");
        return;
    }
    char pub[300], key[300], data[300], sig[300], sig2[300], sig3[300], cmd[2048];
    tmp_path(pub, sizeof pub, "cli.pub");
    tmp_path(key, sizeof key, "cli.key");
    tmp_path(data, sizeof data, "data.bin");
    tmp_path(sig, sizeof sig, "data.ours.minisig");
    tmp_path(sig2, sizeof sig2, "data.cli.minisig");
    tmp_path(sig3, sizeof sig3, "data.legacy.minisig");
    snprintf(cmd, sizeof cmd, MINISIGN " -G -W -p '%s' -s '%s'", pub, key);
    if (!CHECK(run(cmd) == 0) || !REQUIRE(write_file(data, DATA, DATA_LEN))) {
        group_end(NULL);
        return;
    }
    bytes_t key_text = read_file(key), pub_text = read_file(pub);
    ks_keychain *kc = NULL;
    ks_key_info info;
    if (OK(ks_keychain_generate(NULL, &kc, E)) &&
        OK(ks_keychain_import_minisign_secret_key(kc, key_text.p, key_text.n, NULL, 0, &info, E))) {
        /* Imported into a keychain with no signing key: the primary. */
        CHECK(info.purpose == KS_PURPOSE_SIGN && info.algorithm == KS_ALG_ED25519 && info.primary);
        /* The same key twice is refused; a password given for an
         * unencrypted key is ignored. */
        EXPECT(ks_keychain_import_minisign_secret_key(kc, key_text.p, key_text.n, (const uint8_t *)"pw", 2, NULL, E),
               KS_ERR_INVALID_INPUT);
        CHECK(strstr(h_msg, "already") != NULL);
        /* The public key the keychain gives is minisign's own file. */
        ks_buffer ours = {0};
        if (OK(ks_keychain_public_key(kc, info.key_id, KS_PUBKEY_MINISIGN, &ours, E))) {
            char a[128], b[128];
            minisign_line(ours, a, sizeof a);
            ks_buffer theirs = {pub_text.p, pub_text.n};
            minisign_line(theirs, b, sizeof b);
            CHECK(strcmp(a, b) == 0);
        }
        ks_buffer_free(&ours);

        /* Ours, verified by minisign -V. */
        ks_buffer s = {0};
        if (OK(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, "made by keystrata", &s, E)) &&
            REQUIRE(write_file(sig, s.data, s.len))) {
            snprintf(cmd, sizeof cmd, MINISIGN " -Vm '%s' -x '%s' -p '%s'", data, sig, pub);
            CHECK(run(cmd) == 0);
            snprintf(cmd, sizeof cmd, MINISIGN " -V -H -m '%s' -x '%s' -p '%s'", data, sig, pub);
            CHECK(run(cmd) == 0); /* prehashed */
            REQUIRE(write_file(data, "tampered", 8));
            snprintf(cmd, sizeof cmd, MINISIGN " -Vm '%s' -x '%s' -p '%s'", data, sig, pub);
            CHECK(run(cmd) == 1);
            REQUIRE(write_file(data, DATA, DATA_LEN));
        }
        ks_buffer_free(&s);

        /* minisign -S's, verified here (prehashed and legacy). */
        snprintf(cmd, sizeof cmd, MINISIGN " -S -s '%s' -m '%s' -x '%s' -t 'made by minisign'", key, data, sig2);
        if (CHECK(run(cmd) == 0)) {
            bytes_t st = read_file(sig2);
            ks_key_info who;
            if (OK(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, st.p, st.n, &who, E)))
                CHECK(who.key_id == info.key_id);
            EXPECT(ks_keychain_verify_minisign(kc, DATA, DATA_LEN - 1, st.p, st.n, NULL, E), KS_ERR_AUTHENTICATION);
            char *pk = malloc(pub_text.n + 1);
            memcpy(pk, pub_text.p, pub_text.n);
            pk[pub_text.n] = '\0';
            ks_buffer tc = {0};
            if (OK(ks_minisign_verify(pk, DATA, DATA_LEN, st.p, st.n, &tc, E)))
                CHECK(buf_eq(tc, (const uint8_t *)"made by minisign", 16));
            ks_buffer_free(&tc);
            free(pk);
            bytes_free(&st);
        }
        snprintf(cmd, sizeof cmd, MINISIGN " -S -l -s '%s' -m '%s' -x '%s'", key, data, sig3);
        if (CHECK(run(cmd) == 0)) {
            bytes_t st = read_file(sig3);
            OK(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, st.p, st.n, NULL, E));
            bytes_free(&st);
        }

        /* A key the keychain made itself (not imported) is minisign's
         * too: its .pub file and signature pass minisign -V. */
        ks_key_info own;
        ks_buffer opub = {0}, os = {0};
        char opub_path[300];
        tmp_path(opub_path, sizeof opub_path, "own.pub");
        if (OK(ks_keychain_rotate_signing(kc, KS_ALG_ED25519, &own, E)) &&
            OK(ks_keychain_public_key(kc, own.key_id, KS_PUBKEY_MINISIGN, &opub, E)) &&
            OK(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, "own key", &os, E)) &&
            REQUIRE(write_file(opub_path, opub.data, opub.len)) && REQUIRE(write_file(sig, os.data, os.len))) {
            snprintf(cmd, sizeof cmd, MINISIGN " -Vm '%s' -x '%s' -p '%s'", data, sig, opub_path);
            CHECK(run(cmd) == 0);
            /* Not the imported key's signature. */
            snprintf(cmd, sizeof cmd, MINISIGN " -Vm '%s' -x '%s' -p '%s'", data, sig, pub);
            CHECK(run(cmd) != 0);
        }
        ks_buffer_free(&opub);
        ks_buffer_free(&os);
    }
    ks_keychain_free(kc);
    bytes_free(&key_text);
    bytes_free(&pub_text);
    group_end(NULL);
}

/* ------------------------------------------------------------------ */

static bool trust_line(char *out, size_t cap, const ks_keychain *kc, uint32_t key_id, const char *name,
                       const char *kind, const char *status, const char *alg)
{
    ks_buffer pk = {0};
    char key[512];
    bool minisign = strcmp(kind, "community") == 0;
    if (!OK(ks_keychain_public_key(kc, key_id, minisign ? KS_PUBKEY_MINISIGN : KS_PUBKEY_PEM, &pk, E)))
        return false;
    if (minisign)
        minisign_line(pk, key, sizeof key);
    else
        pem_body(pk, key, sizeof key);
    ks_buffer_free(&pk);
    size_t used = strlen(out);
    snprintf(out + used, cap - used, "%-14s %-10s %-8s %-16s %s\n", name, kind, status, alg, key);
    return true;
}

static void group_trust(void)
{
    group_begin("sign_more: trust files");
    ks_keychain *kc = NULL;
    ks_key_info k1, ed, p256;
    if (!OK(ks_keychain_generate(NULL, &kc, E)) || !OK(ks_keychain_rotate_signing(kc, KS_ALG_ECDSA_SECP256K1, &k1, E)) ||
        !OK(ks_keychain_rotate_signing(kc, KS_ALG_ED25519, &ed, E)) ||
        !OK(ks_keychain_rotate_signing(kc, KS_ALG_ECDSA_P256, &p256, E))) {
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    char text[4096] = "# keystrata trusted keys v1\n\n";
    if (!trust_line(text, sizeof text, kc, p256.key_id, "release-2026", "official", "active", "ecdsa-p256") ||
        !trust_line(text, sizeof text, kc, k1.key_id, "release-2025", "official", "revoked", "ecdsa-secp256k1") ||
        !trust_line(text, sizeof text, kc, ed.key_id, "alice@example", "community", "active", "minisign")) {
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    ks_trusted_keys *tk = NULL;
    if (!OK(ks_trusted_keys_parse((const uint8_t *)text, strlen(text), &tk, E))) {
        fprintf(stderr, "%s", text);
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    CHECK(ks_trusted_keys_count(tk) == 3);
    CHECK(ks_trusted_keys_count(NULL) == 0);

    /* Official: the P-256 primary's DER and raw signatures. */
    uint8_t sig[KS_MAX_SIGNATURE_LEN];
    size_t n = 0;
    ks_trust_result r;
    memset(&r, 0x5e, sizeof r);
    for (uint32_t fmt = KS_SIG_DER; fmt <= KS_SIG_RAW; fmt++) {
        if (!OK(ks_keychain_sign(kc, DATA, DATA_LEN, fmt, sig, sizeof sig, &n, NULL, E)))
            continue;
        if (OK(ks_trusted_keys_verify(tk, DATA, DATA_LEN, sig, n, &r, E))) {
            CHECK(r.name && strcmp(r.name, "release-2026") == 0);
            CHECK(r.kind == KS_TRUST_OFFICIAL && r.algorithm == KS_ALG_ECDSA_P256 && r.trusted_comment == NULL);
            CHECK(strcmp(ks_trust_kind_name(r.kind), "official") == 0);
            ks_trust_result_clear(&r);
            CHECK(r.name == NULL && r.trusted_comment == NULL && r.kind == KS_TRUST_UNKNOWN);
            ks_trust_result_clear(&r); /* twice is safe */
        }
        memset(&r, 0x5e, sizeof r);
        EXPECT(ks_trusted_keys_verify(tk, DATA, DATA_LEN - 1, sig, n, &r, E), KS_ERR_AUTHENTICATION);
        CHECK(all_byte((const uint8_t *)&r, sizeof r, 0x5e)); /* untouched */
    }
    /* Community: a minisign signature by the Ed25519 key. */
    OK(ks_keychain_promote(kc, ed.key_id, NULL, E));
    ks_buffer ms = {0};
    if (OK(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, "by alice", &ms, E))) {
        if (OK(ks_trusted_keys_verify(tk, DATA, DATA_LEN, ms.data, ms.len, &r, E))) {
            CHECK(strcmp(r.name, "alice@example") == 0 && r.kind == KS_TRUST_COMMUNITY &&
                  r.algorithm == KS_ALG_ED25519);
            CHECK(r.trusted_comment && strcmp(r.trusted_comment, "by alice") == 0);
            CHECK(strcmp(ks_trust_kind_name(KS_TRUST_COMMUNITY), "community") == 0);
            ks_trust_result_clear(&r);
        }
        EXPECT(ks_trusted_keys_verify(tk, DATA, 5, ms.data, ms.len, &r, E), KS_ERR_AUTHENTICATION);
    }
    ks_buffer_free(&ms);
    /* An Ed25519 raw signature is not a trust file signature. */
    if (OK(ks_keychain_sign(kc, DATA, DATA_LEN, KS_SIG_DER, sig, sizeof sig, &n, NULL, E)))
        EXPECT(ks_trusted_keys_verify(tk, DATA, DATA_LEN, sig, n, &r, E), KS_ERR_AUTHENTICATION);
    /* Revoked: the secp256k1 key's signature verifies, and fails naming it. */
    OK(ks_keychain_promote(kc, k1.key_id, NULL, E));
    if (OK(ks_keychain_sign(kc, DATA, DATA_LEN, KS_SIG_DER, sig, sizeof sig, &n, NULL, E))) {
        EXPECT(ks_trusted_keys_verify(tk, DATA, DATA_LEN, sig, n, &r, E), KS_ERR_KEY_DISABLED);
        CHECK(strstr(h_msg, "release-2025") != NULL);
    }
    /* A minisign key the file does not list. */
    ks_keychain *other = NULL;
    ks_buffer oms = {0};
    if (OK(ks_keychain_generate(NULL, &other, E)) && OK(ks_keychain_rotate_signing(other, KS_ALG_ED25519, NULL, E)) &&
        OK(ks_keychain_sign_minisign(other, DATA, DATA_LEN, "", &oms, E)))
        EXPECT(ks_trusted_keys_verify(tk, DATA, DATA_LEN, oms.data, oms.len, &r, E), KS_ERR_UNKNOWN_KEY);
    ks_buffer_free(&oms);
    ks_keychain_free(other);
    EXPECT(ks_trusted_keys_verify(tk, DATA, DATA_LEN, (const uint8_t *)"untrusted comment: x\nnot base64\n", 32, &r, E),
           KS_ERR_FORMAT);

    /* The same file from disk. */
    char path[300];
    tmp_path(path, sizeof path, "KEYS.txt");
    ks_trusted_keys *loaded = NULL;
    if (REQUIRE(write_file(path, text, strlen(text))) && OK(ks_trusted_keys_load(path, &loaded, E)))
        CHECK(ks_trusted_keys_count(loaded) == 3);
    ks_trusted_keys_free(loaded);
    loaded = NULL;
    tmp_path(path, sizeof path, "no-such-KEYS.txt");
    EXPECT(ks_trusted_keys_load(path, &loaded, E), KS_ERR_IO);
    CHECK(loaded == NULL);

    /* Malformed files. */
    ks_trusted_keys *bad = NULL;
    const char *malformed[] = {
        "# header\nrelease official active ecdsa-p256\n",                    /* 4 fields */
        "r official active ecdsa-p256 bm90IGEga2V5\n",                        /* not a key */
        "r community active minisign RWQnotakey\n",                           /* not a key */
        "r official maybe ecdsa-p256 bm90IGEga2V5\n",                         /* status */
        "r partner active ecdsa-p256 bm90IGEga2V5\n",                         /* kind */
        "bad/name official active ecdsa-p256 bm90IGEga2V5\n",                 /* name */
    };
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        EXPECT(ks_trusted_keys_parse((const uint8_t *)malformed[i], strlen(malformed[i]), &bad, E), KS_ERR_FORMAT);
        CHECK(bad == NULL);
    }
    EXPECT(ks_trusted_keys_parse((const uint8_t *)malformed[0], strlen(malformed[0]), &bad, E), KS_ERR_FORMAT);
    CHECK(strstr(h_msg, "line 2") != NULL);
    /* The same key twice, under two names. */
    char twice[8192];
    snprintf(twice, sizeof twice, "%s", text);
    char *dup = strstr(twice, "release-2026");
    if (REQUIRE(dup != NULL)) {
        char *eol = strchr(dup, '\n');
        size_t l = (size_t)(eol - dup) + 1;
        char line[1024];
        memcpy(line, dup, l);
        line[l] = '\0';
        memcpy(line, "release-2027", 12);
        strcat(twice, line);
        EXPECT(ks_trusted_keys_parse((const uint8_t *)twice, strlen(twice), &bad, E), KS_ERR_FORMAT);
    }
    EXPECT(ks_trusted_keys_parse((const uint8_t *)"\xff\xfe\n", 3, &bad, E), KS_ERR_FORMAT);
    size_t huge_n = (1u << 20) + 1;
    char *huge = malloc(huge_n);
    memset(huge, '#', huge_n);
    EXPECT(ks_trusted_keys_parse((const uint8_t *)huge, huge_n, &bad, E), KS_ERR_INVALID_INPUT);
    huge[0] = '\xff';
    EXPECT(ks_trusted_keys_parse((const uint8_t *)huge, huge_n, &bad, E), KS_ERR_INVALID_INPUT);
    free(huge);
    CHECK(bad == NULL);
    /* An empty file lists nothing, so nothing verifies. */
    if (OK(ks_trusted_keys_parse(NULL, 0, &bad, E))) {
        CHECK(ks_trusted_keys_count(bad) == 0);
        EXPECT(ks_trusted_keys_verify(bad, DATA, DATA_LEN, sig, n, &r, E), KS_ERR_UNKNOWN_KEY);
    }
    ks_trusted_keys_free(bad);
    CHECK(ks_trust_kind_name(KS_TRUST_UNKNOWN) == NULL && ks_trust_kind_name(3) == NULL && ks_trust_kind_name(-1) == NULL);
    ks_trusted_keys_free(tk);
    ks_keychain_free(kc);
    group_end(NULL);
}

/* ------------------------------------------------------------------ */

typedef struct {
    const ks_signer *s;
    const ks_keychain *kc;
    int bad;
} signer_worker;

static void *sign_worker(void *p)
{
    signer_worker *w = p;
    ks_error *err = NULL;
    for (int i = 0; i < (g_quick ? 10 : 100); i++) {
        uint8_t msg[8], sig[KS_MAX_SIGNATURE_LEN];
        size_t n = 0;
        memcpy(msg, &i, sizeof i);
        memcpy(msg + 4, &w, 4);
        if (ks_signer_sign(w->s, msg, sizeof msg, sig, sizeof sig, &n, &err) != KS_OK ||
            ks_keychain_verify(w->kc, msg, sizeof msg, sig, n, NULL, &err) != KS_OK) {
            fprintf(stderr, "sign_worker: %s\n", ks_error_message(err));
            ks_error_free(err);
            err = NULL;
            w->bad++;
        }
    }
    return NULL;
}

static void group_signer_keychain(void)
{
    group_begin("sign_more: the keychain's signing primary as a ks_signer");
    ks_keychain *kc = NULL;
    ks_signer *s = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E)) || !OK(ks_keychain_signer(kc, &s, E))) {
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    ks_algorithm alg = (ks_algorithm)77;
    uint8_t sig[KS_MAX_SIGNATURE_LEN];
    size_t n = SENT_LEN;
    /* No signing key yet. */
    EXPECT(ks_signer_algorithm(s, &alg, E), KS_ERR_UNKNOWN_KEY);
    CHECK(alg == (ks_algorithm)77);
    EXPECT(ks_signer_health_check(s, E), KS_ERR_UNKNOWN_KEY);
    EXPECT(ks_signer_sign(s, DATA, DATA_LEN, sig, sizeof sig, &n, E), KS_ERR_UNKNOWN_KEY);
    CHECK(n == SENT_LEN);

    ks_key_info p256;
    if (OK(ks_keychain_rotate_signing(kc, KS_ALG_ECDSA_P256, &p256, E))) {
        OK(ks_signer_health_check(s, E));
        if (OK(ks_signer_algorithm(s, &alg, E)))
            CHECK(alg == KS_ALG_ECDSA_P256);
        ks_buffer raw = {0}, kraw = {0}, pem = {0};
        OK(ks_signer_public_key(s, KS_PUBKEY_RAW, &raw, E));
        OK(ks_keychain_public_key(kc, p256.key_id, KS_PUBKEY_RAW, &kraw, E));
        CHECK(raw.len == 65 && buf_eq(raw, kraw.data, kraw.len));
        if (OK(ks_signer_public_key(s, KS_PUBKEY_PEM, &pem, E)))
            CHECK(buf_has(pem, "-----BEGIN PUBLIC KEY-----"));
        ks_buffer ms = sent_buf();
        EXPECT(ks_signer_public_key(s, KS_PUBKEY_MINISIGN, &ms, E), KS_ERR_UNSUPPORTED);
        EXPECT(ks_signer_public_key(s, 0, &ms, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_signer_public_key(s, 5, &ms, E), KS_ERR_INVALID_INPUT);
        CHECK(buf_untouched(ms));
        /* DER signatures that verify with the key alone and the keychain. */
        if (OK(ks_signer_sign(s, DATA, DATA_LEN, sig, sizeof sig, &n, E))) {
            CHECK(n >= 8 && n <= KS_MAX_SIGNATURE_LEN && sig[0] == 0x30);
            OK(ks_verify_signature(KS_ALG_ECDSA_P256, raw.data, raw.len, DATA, DATA_LEN, sig, n, E));
            ks_key_info who;
            if (OK(ks_keychain_verify(kc, DATA, DATA_LEN, sig, n, &who, E)))
                CHECK(who.key_id == p256.key_id);
        }
        /* A digest (any 32 bytes: ECDSA signs the digest given). */
        uint8_t digest[32];
        memset(digest, 0xa5, sizeof digest);
        if (OK(ks_signer_sign_digest(s, digest, 32, sig, sizeof sig, &n, E))) {
            CHECK(sig[0] == 0x30);
            OK(ks_keychain_verify_digest(kc, digest, 32, sig, n, NULL, E));
        }
        EXPECT(ks_signer_sign_digest(s, digest, 31, sig, sizeof sig, &n, E), KS_ERR_INVALID_INPUT);
        /* The length query and too little room: nothing is signed. */
        ks_counters c0, c1;
        OK(ks_keychain_counters(kc, &c0, E));
        OK(ks_signer_sign(s, DATA, DATA_LEN, NULL, 0, &n, E));
        CHECK(n == KS_MAX_SIGNATURE_LEN);
        n = 0;
        EXPECT(ks_signer_sign(s, DATA, DATA_LEN, sig, KS_MAX_SIGNATURE_LEN - 1, &n, E), KS_ERR_BUFFER_TOO_SMALL);
        CHECK(n == KS_MAX_SIGNATURE_LEN);
        n = 0;
        EXPECT(ks_signer_sign_digest(s, digest, 32, sig, 0, &n, E), KS_ERR_BUFFER_TOO_SMALL);
        CHECK(n == KS_MAX_SIGNATURE_LEN);
        OK(ks_keychain_counters(kc, &c1, E));
        CHECK(c1.sign == c0.sign);
        EXPECT(ks_signer_sign(s, DATA, DATA_LEN, sig, sizeof sig, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_signer_sign(s, NULL, 1, sig, sizeof sig, &n, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_signer_sign(s, DATA, DATA_LEN, sig, SIZE_MAX, &n, E), KS_ERR_INVALID_INPUT);
        ks_buffer_free(&raw);
        ks_buffer_free(&kraw);
        ks_buffer_free(&pem);
    }

    /* Signatures are audited like the keychain's own. */
    ev_rec rec;
    ev_rec_init(&rec);
    uint64_t sub = 0;
    OK(ks_keychain_subscribe(kc, ev_cb, &rec, &sub, E));
    /* A rotation takes effect at once. */
    ks_key_info ed;
    if (OK(ks_keychain_rotate_signing(kc, KS_ALG_ED25519, &ed, E))) {
        if (OK(ks_signer_algorithm(s, &alg, E)))
            CHECK(alg == KS_ALG_ED25519);
        if (OK(ks_signer_sign(s, DATA, DATA_LEN, sig, sizeof sig, &n, E))) {
            CHECK(n == 64);
            ks_key_info who;
            if (OK(ks_keychain_verify(kc, DATA, DATA_LEN, sig, n, &who, E)))
                CHECK(who.key_id == ed.key_id);
        }
        ks_event e;
        if (CHECK(ev_last(&rec, KS_EVENT_SIGNED, &e)))
            CHECK(e.key_id == ed.key_id && e.algorithm == KS_ALG_ED25519);
        uint8_t digest[32] = {1};
        EXPECT(ks_signer_sign_digest(s, digest, 32, sig, sizeof sig, &n, E), KS_ERR_UNSUPPORTED);
        ks_buffer ms = {0};
        if (OK(ks_signer_public_key(s, KS_PUBKEY_MINISIGN, &ms, E)))
            CHECK(buf_has(ms, "untrusted comment: minisign public key "));
        ks_buffer_free(&ms);
    }
    OK(ks_keychain_unsubscribe(kc, sub, E));
    pthread_mutex_destroy(&rec.mu);

    /* Several threads on one signer. */
    pthread_t th[4];
    signer_worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (signer_worker){s, kc, 0};
        pthread_create(&th[i], NULL, sign_worker, &w[i]);
    }
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        bad += w[i].bad;
    }
    CHECK(bad == 0);

    /* Closing the signer closes only it; closing the keychain, both. */
    ks_signer *s2 = NULL;
    OK(ks_keychain_signer(kc, &s2, E));
    OK(ks_signer_close(s, E));
    OK(ks_signer_close(s, E)); /* idempotent */
    EXPECT(ks_signer_sign(s, DATA, DATA_LEN, sig, sizeof sig, &n, E), KS_ERR_UNAVAILABLE);
    EXPECT(ks_signer_algorithm(s, &alg, E), KS_ERR_UNAVAILABLE);
    EXPECT(ks_signer_health_check(s, E), KS_ERR_UNAVAILABLE);
    ks_buffer pk = sent_buf();
    EXPECT(ks_signer_public_key(s, KS_PUBKEY_RAW, &pk, E), KS_ERR_UNAVAILABLE);
    CHECK(buf_untouched(pk));
    OK(ks_signer_sign(s2, DATA, DATA_LEN, sig, sizeof sig, &n, E));
    OK(ks_keychain_sign(kc, DATA, DATA_LEN, KS_SIG_DER, sig, sizeof sig, &n, NULL, E));
    OK(ks_keychain_close(kc, E));
    EXPECT(ks_signer_sign(s2, DATA, DATA_LEN, sig, sizeof sig, &n, E), KS_ERR_UNAVAILABLE);
    EXPECT(ks_signer_health_check(s2, E), KS_ERR_UNAVAILABLE);
    ks_signer *s3 = (ks_signer *)SENT;
    EXPECT(ks_keychain_signer(kc, &s3, E), KS_ERR_UNAVAILABLE);
    CHECK(s3 == (ks_signer *)SENT);
    ks_signer_free(s);
    /* A keychain's signer may be freed after the keychain. */
    ks_keychain_free(kc);
    ks_signer_free(s2);

    /* A signer keeps its keychain alive: it signs after ks_keychain_free. */
    ks_keychain *kc2 = NULL;
    ks_signer *s4 = NULL;
    if (OK(ks_keychain_generate(NULL, &kc2, E)) && OK(ks_keychain_rotate_signing(kc2, KS_ALG_ED25519, NULL, E)) &&
        OK(ks_keychain_signer(kc2, &s4, E))) {
        ks_keychain_free(kc2);
        kc2 = NULL;
        if (OK(ks_signer_sign(s4, DATA, DATA_LEN, sig, sizeof sig, &n, E)))
            CHECK(n == 64);
        OK(ks_signer_health_check(s4, E));
    }
    ks_signer_free(s4);
    ks_keychain_free(kc2);
    group_end(NULL);
}

/* ------------------------------------------------------------------ */

static void group_hostile(void)
{
    group_begin("sign_more: hostile arguments");
    ks_keychain *kc = NULL;
    ks_key_info ed;
    if (!OK(ks_keychain_generate(NULL, &kc, E)) || !OK(ks_keychain_rotate_signing(kc, KS_ALG_ED25519, &ed, E))) {
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    ks_buffer b = sent_buf();
    ks_key_info info;
    memset(&info, 0x5e, sizeof info);
    /* NULLs. */
    EXPECT(ks_keychain_sign_minisign(NULL, DATA, DATA_LEN, "", &b, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_sign_minisign(kc, NULL, 3, "", &b, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, NULL, &b, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, "", NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_verify_minisign(NULL, DATA, DATA_LEN, DATA, DATA_LEN, &info, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, NULL, 5, &info, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_import_minisign_secret_key(NULL, DATA, DATA_LEN, NULL, 0, &info, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_import_minisign_secret_key(kc, NULL, 4, NULL, 0, &info, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_import_minisign_secret_key(kc, DATA, DATA_LEN, NULL, 4, &info, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_minisign_verify(NULL, DATA, DATA_LEN, DATA, DATA_LEN, &b, E), KS_ERR_NULL_ARGUMENT);
    ks_trusted_keys *tk = (ks_trusted_keys *)SENT;
    EXPECT(ks_trusted_keys_parse(NULL, 4, &tk, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_trusted_keys_parse((const uint8_t *)"", 0, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_trusted_keys_load(NULL, &tk, E), KS_ERR_NULL_ARGUMENT);
    CHECK(tk == (ks_trusted_keys *)SENT);
    ks_trust_result r;
    EXPECT(ks_trusted_keys_verify(NULL, DATA, DATA_LEN, DATA, DATA_LEN, &r, E), KS_ERR_NULL_ARGUMENT);
    ks_trusted_keys_free(NULL);
    ks_trust_result_clear(NULL);
    ks_trust_result zero = {0};
    ks_trust_result_clear(&zero);
    ks_algorithm alg;
    uint8_t sig[KS_MAX_SIGNATURE_LEN];
    size_t n;
    EXPECT(ks_keychain_signer(NULL, (ks_signer **)&tk, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_signer(kc, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_signer_algorithm(NULL, &alg, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_signer_public_key(NULL, KS_PUBKEY_RAW, &b, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_signer_sign(NULL, DATA, DATA_LEN, sig, sizeof sig, &n, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_signer_sign_digest(NULL, DATA, 32, sig, sizeof sig, &n, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_signer_health_check(NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_signer_close(NULL, E), KS_ERR_NULL_ARGUMENT);
    ks_signer_free(NULL);
    ks_signer *s = (ks_signer *)SENT;
    /* Bad numbers and PINs are refused before any module is loaded. */
    EXPECT(ks_signer_pkcs11_new("/nonexistent/p11.so", "T", "1234", NULL, "k", 0, 0, &s, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_signer_pkcs11_new("/nonexistent/p11.so", "T", "1234", NULL, "k", 4, 0, &s, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_signer_pkcs11_new("/nonexistent/p11.so", "T", "1234", NULL, "k", KS_ALG_ED25519, 2, &s, E),
           KS_ERR_INVALID_INPUT);
    EXPECT(ks_signer_pkcs11_new("/nonexistent/p11.so", "T", "1234", "PIN_VAR", "k", KS_ALG_ED25519, 0, &s, E),
           KS_ERR_INVALID_INPUT);
    EXPECT(ks_signer_pkcs11_new("/nonexistent/p11.so", "T", NULL, NULL, "k", KS_ALG_ED25519, 0, &s, E),
           KS_ERR_INVALID_INPUT);
    EXPECT(ks_signer_pkcs11_new("/nonexistent/p11.so", "T", "s3cr3t-pin", NULL, "k", KS_ALG_ED25519, 0, &s, E),
           KS_ERR_INVALID_INPUT);
    CHECK(strstr(h_msg, "s3cr3t-pin") == NULL);
    EXPECT(ks_signer_pkcs11_new(NULL, "T", "1234", NULL, "k", KS_ALG_ED25519, 0, &s, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_signer_pkcs11_new("/x.so", NULL, "1234", NULL, "k", KS_ALG_ED25519, 0, &s, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_signer_pkcs11_new("/x.so", "T", "1234", NULL, NULL, KS_ALG_ED25519, 0, &s, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_signer_pkcs11_new("/x.so", "T", "1234", NULL, "k", KS_ALG_ED25519, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
    CHECK(s == (ks_signer *)SENT);

    /* Garbage and huge texts. */
    const char *garbage[] = {"", "untrusted comment: x\n", "untrusted comment: x\nRWQ=\ntrusted comment: \nAAAA\n",
                             "\x00\x01\x02", "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"};
    for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++) {
        size_t l = i == 3 ? 3 : strlen(garbage[i]);
        EXPECT(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, (const uint8_t *)garbage[i], l, &info, E), KS_ERR_FORMAT);
        EXPECT(ks_keychain_import_minisign_secret_key(kc, (const uint8_t *)garbage[i], l, NULL, 0, &info, E),
               KS_ERR_FORMAT);
        b = sent_buf();
        EXPECT(ks_minisign_verify(garbage[4], DATA, DATA_LEN, (const uint8_t *)garbage[i], l, &b, E), KS_ERR_FORMAT);
        CHECK(buf_untouched(b));
    }
    CHECK(all_byte((const uint8_t *)&info, sizeof info, 0x5e));
    EXPECT(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, (const uint8_t *)"\xff\xfe", 2, NULL, E), KS_ERR_FORMAT);
    EXPECT(ks_keychain_import_minisign_secret_key(kc, (const uint8_t *)"\xc3\x28", 2, NULL, 0, NULL, E), KS_ERR_FORMAT);
    EXPECT(ks_minisign_verify("\xff", DATA, DATA_LEN, DATA, DATA_LEN, NULL, E), KS_ERR_FORMAT);
    EXPECT(ks_minisign_verify("not a key", DATA, DATA_LEN, DATA, DATA_LEN, NULL, E), KS_ERR_FORMAT);
    size_t huge_n = 200 * 1024;
    uint8_t *huge = malloc(huge_n);
    memset(huge, 'A', huge_n);
    EXPECT(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, huge, huge_n, NULL, E), KS_ERR_FORMAT);
    EXPECT(ks_keychain_import_minisign_secret_key(kc, huge, huge_n, (const uint8_t *)"pw", 2, NULL, E), KS_ERR_FORMAT);
    CHECK(strstr(h_msg, "pw") == NULL);
    EXPECT(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, huge, SIZE_MAX, NULL, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_trusted_keys_parse(huge, SIZE_MAX, &tk, E), KS_ERR_INVALID_INPUT);
    huge[huge_n - 1] = '\0';
    EXPECT(ks_minisign_verify((const char *)huge, DATA, DATA_LEN, DATA, DATA_LEN, NULL, E), KS_ERR_FORMAT);
    free(huge);

    /* Another key's public key, and the right one for a signature by
     * another key ID. */
    ks_buffer s1 = {0}, pub = {0};
    if (OK(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, "x", &s1, E))) {
        ks_keychain *other = NULL;
        ks_key_info oi;
        if (OK(ks_keychain_generate(NULL, &other, E)) && OK(ks_keychain_rotate_signing(other, KS_ALG_ED25519, &oi, E)) &&
            OK(ks_keychain_public_key(other, oi.key_id, KS_PUBKEY_MINISIGN, &pub, E))) {
            char *pk = cstr_of(pub);
            EXPECT(ks_minisign_verify(pk, DATA, DATA_LEN, s1.data, s1.len, NULL, E), KS_ERR_UNKNOWN_KEY);
            EXPECT(ks_keychain_verify_minisign(other, DATA, DATA_LEN, s1.data, s1.len, NULL, E), KS_ERR_UNKNOWN_KEY);
            free(pk);
        }
        ks_keychain_free(other);
    }
    ks_buffer_free(&pub);

    /* Closed handles. */
    ks_signer *ks = NULL;
    OK(ks_keychain_signer(kc, &ks, E));
    OK(ks_keychain_close(kc, E));
    b = sent_buf();
    EXPECT(ks_keychain_sign_minisign(kc, DATA, DATA_LEN, "", &b, E), KS_ERR_UNAVAILABLE);
    CHECK(buf_untouched(b));
    EXPECT(ks_keychain_verify_minisign(kc, DATA, DATA_LEN, s1.data, s1.len, NULL, E), KS_ERR_UNAVAILABLE);
    EXPECT(ks_signer_sign(ks, DATA, DATA_LEN, sig, sizeof sig, &n, E), KS_ERR_UNAVAILABLE);
    ks_buffer_free(&s1);
    ks_signer_free(ks);
    ks_keychain_free(kc);
    group_end(NULL);
}

void run_sign_more(void)
{
    group_minisign_keychain();
    group_minisign_cli();
    group_trust();
    group_signer_keychain();
    group_hostile();
}
