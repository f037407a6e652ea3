/*
 * keystrata's C ABI beside OpenSSL's EVP AES-256-GCM, interleaved (A B A B,
 * several rounds). Prints one JSON line per case and implementation (ns per
 * call). Run by `make bench` (bench/run.py).
 *
 * The OpenSSL peer does what ks_keychain_seal does: draws a random 12-byte
 * nonce (RAND_bytes), allocates nonce|ct|tag, encrypts. keystrata is shown
 * both with its allocating call (ks_keychain_seal + ks_buffer_free) and
 * writing into a caller's buffer (ks_keychain_seal_to).
 *
 * Signing (sign_<alg>, verify_<alg>, verify_signature_<alg>; a 64-byte
 * message): a keychain whose signing primary is a key of <alg>
 * (ks_keychain_rotate_signing; DER ECDSA signatures) beside an OpenSSL key
 * of the same algorithm through EVP_DigestSign / EVP_DigestVerify (SHA-256
 * for ECDSA). ks_verify_signature takes the raw public key alone, so its
 * peer builds the EVP_PKEY from those raw bytes on every call too.
 *
 * Streaming (stream_encrypt, stream_decrypt; 1 GiB, Tink's
 * AES256_GCM_HKDF_1MB): ks_stream_encrypt_update / ks_stream_decrypt_update
 * handed 1 MiB at a time, writing into one reused buffer, beside OpenSSL
 * EVP AES-256-GCM over the same 1 GiB as 1,024 one-shot messages of 1 MiB
 * (counter IV, reused output buffer). The decrypt peer opens 1,024
 * distinct sealed messages held in memory, as keystrata decrypts a real
 * 1 GiB stream held in memory (one cached message opened 1,024 times reads
 * from cache, not memory: measured twice as fast).
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "keystrata.h"

static int ROUNDS = 7;
static double SAMPLE_S = 0.04;
static volatile size_t sink;

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

typedef void (*fn)(void *);
struct imp { const char *name; fn f; void *arg; };

static long calibrate(fn f, void *arg) {
	for (long n = 1;; n *= 4) {
		double t = now();
		for (long i = 0; i < n; i++) f(arg);
		double el = now() - t;
		if (el >= SAMPLE_S * 1e9 / 4 || n >= (1L << 30)) {
			long k = (long)(SAMPLE_S * 1e9 / (el / n));
			return k < 1 ? 1 : k;
		}
	}
}

/* An optional argument runs only the cases whose names start with it (as the other programs). */
static const char *only = "";

static void run(const char *c, size_t size, struct imp *imps, int n) {
	if (strncmp(c, only, strlen(only)) != 0) return;
	long iters[4];
	double s[4][64];
	/* One call first: a one-time cost (the first ECDSA signature of a
	 * process) must not set the batch size. */
	for (int i = 0; i < n; i++) imps[i].f(imps[i].arg);
	for (int i = 0; i < n; i++) iters[i] = calibrate(imps[i].f, imps[i].arg);
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < n; i++) {
			double t = now();
			for (long k = 0; k < iters[i]; k++) imps[i].f(imps[i].arg);
			s[i][r] = (now() - t) / iters[i];
		}
	for (int i = 0; i < n; i++) {
		printf("{\"lang\":\"c\",\"case\":\"%s\",\"size\":%zu,\"impl\":\"%s\",\"unit\":\"ns\",\"samples\":[", c, size, imps[i].name);
		for (int r = 0; r < ROUNDS; r++) printf("%s%.3f", r ? "," : "", s[i][r]);
		printf("]}\n");
	}
	fflush(stdout);
}

struct ctx {
	ks_keychain *kc;
	EVP_CIPHER_CTX *evp;
	const uint8_t *pt;
	size_t len;
	uint8_t *room;
};

/* The error of the last call (every call takes &err; the library sets it to NULL on success). */
static ks_error *err;

static void die(const char *what) { fprintf(stderr, "bench: %s failed: %s\n", what, ks_error_message(err)); exit(1); }

static void ks_seal(void *a) {
	struct ctx *c = a;
	ks_buffer out = {0};
	if (ks_keychain_seal(c->kc, c->pt, c->len, (const uint8_t *)"aad", 3, &out, &err) != KS_OK) die("seal");
	sink += out.len;
	ks_buffer_free(&out);
}

static void ks_seal_to(void *a) {
	struct ctx *c = a;
	size_t n = 0;
	if (ks_keychain_seal_to(c->kc, c->pt, c->len, (const uint8_t *)"aad", 3, c->room, c->len + 33, &n, &err) != KS_OK)
		die("seal_to");
	sink += c->room[0];
}

static void ks_encrypt(void *a) {
	struct ctx *c = a;
	ks_buffer out = {0};
	if (ks_keychain_encrypt(c->kc, c->pt, c->len, (const uint8_t *)"aad", 3, &out, &err) != KS_OK) die("encrypt");
	sink += out.len;
	ks_buffer_free(&out);
}

/* nonce(12) | ct | tag(16) into `out` with OpenSSL EVP. */
static void evp_seal_into(struct ctx *c, uint8_t *out) {
	int n = 0, m = 0;
	if (RAND_bytes(out, 12) != 1 ||
	    EVP_EncryptInit_ex(c->evp, NULL, NULL, NULL, out) != 1 ||
	    EVP_EncryptUpdate(c->evp, NULL, &n, (const uint8_t *)"aad", 3) != 1 ||
	    EVP_EncryptUpdate(c->evp, out + 12, &n, c->pt, (int)c->len) != 1 ||
	    EVP_EncryptFinal_ex(c->evp, out + 12 + n, &m) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->evp, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + c->len) != 1) {
		fprintf(stderr, "bench: EVP failed\n");
		exit(1);
	}
}

static void evp_seal(void *a) {
	struct ctx *c = a;
	uint8_t *out = malloc(c->len + 28);
	evp_seal_into(c, out);
	sink += out[0];
	free(out);
}

static void evp_seal_room(void *a) {
	struct ctx *c = a;
	evp_seal_into(c, c->room);
	sink += c->room[0];
}

struct sctx {
	ks_keychain *kc;
	uint32_t alg;
	uint8_t msg[64];
	uint8_t sig[KS_MAX_SIGNATURE_LEN];
	size_t sig_len;
	ks_buffer pub;           /* keystrata's raw public key */
	EVP_PKEY *pkey;          /* OpenSSL's key pair */
	EVP_MD_CTX *md;
	const EVP_MD *digest;    /* NULL for Ed25519 */
	const char *group;       /* EC group name, NULL for Ed25519 */
	uint8_t psig[128];
	size_t psig_len;
	uint8_t praw[65];        /* OpenSSL's raw public key */
	size_t praw_len;
};

static void ossl_die(const char *what) { fprintf(stderr, "bench: OpenSSL %s failed\n", what); exit(1); }

static void ks_sign(void *a) {
	struct sctx *c = a;
	uint8_t out[KS_MAX_SIGNATURE_LEN];
	size_t n = 0;
	if (ks_keychain_sign(c->kc, c->msg, sizeof c->msg, KS_SIG_DER, out, sizeof out, &n, NULL, &err) != KS_OK)
		die("sign");
	sink += n;
}

static void ks_verify(void *a) {
	struct sctx *c = a;
	if (ks_keychain_verify(c->kc, c->msg, sizeof c->msg, c->sig, c->sig_len, NULL, &err) != KS_OK) die("verify");
	sink++;
}

static void ks_verify_sig(void *a) {
	struct sctx *c = a;
	if (ks_verify_signature(c->alg, c->pub.data, c->pub.len, c->msg, sizeof c->msg, c->sig, c->sig_len, &err) != KS_OK)
		die("verify_signature");
	sink++;
}

static void evp_sign(void *a) {
	struct sctx *c = a;
	uint8_t out[128];
	size_t n = sizeof out;
	if (EVP_DigestSignInit(c->md, NULL, c->digest, NULL, c->pkey) != 1 ||
	    EVP_DigestSign(c->md, out, &n, c->msg, sizeof c->msg) != 1)
		ossl_die("sign");
	sink += n;
}

static void evp_verify_with(struct sctx *c, EVP_PKEY *pkey) {
	if (EVP_DigestVerifyInit(c->md, NULL, c->digest, NULL, pkey) != 1 ||
	    EVP_DigestVerify(c->md, c->psig, c->psig_len, c->msg, sizeof c->msg) != 1)
		ossl_die("verify");
	sink++;
}

static void evp_verify(void *a) {
	struct sctx *c = a;
	evp_verify_with(c, c->pkey);
}

/* The public key from its raw bytes, then verify: what ks_verify_signature does. */
static void evp_verify_raw(void *a) {
	struct sctx *c = a;
	EVP_PKEY *pk = NULL;
	if (!c->group) {
		pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, c->praw, c->praw_len);
	} else {
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)c->group, 0),
			OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, c->praw, c->praw_len),
			OSSL_PARAM_construct_end(),
		};
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		if (!pc || EVP_PKEY_fromdata_init(pc) != 1 || EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
			ossl_die("fromdata");
		EVP_PKEY_CTX_free(pc);
	}
	if (!pk) ossl_die("public key");
	evp_verify_with(c, pk);
	EVP_PKEY_free(pk);
}

/* sign_<alg>, verify_<alg> and verify_signature_<alg> over 64 bytes. */
static void signing(uint32_t alg, const char *name, const char *group) {
	struct sctx c = {0};
	c.alg = alg;
	c.group = group;
	for (size_t i = 0; i < sizeof c.msg; i++) c.msg[i] = (uint8_t)i;
	ks_key_info info;
	if (ks_keychain_generate(NULL, &c.kc, &err) != KS_OK) die("generate");
	if (ks_keychain_rotate_signing(c.kc, alg, &info, &err) != KS_OK) die("rotate_signing");
	if (ks_keychain_public_key(c.kc, info.key_id, KS_PUBKEY_RAW, &c.pub, &err) != KS_OK) die("public_key");
	if (ks_keychain_sign(c.kc, c.msg, sizeof c.msg, KS_SIG_DER, c.sig, sizeof c.sig, &c.sig_len, NULL, &err) != KS_OK)
		die("sign");
	c.md = EVP_MD_CTX_new();
	if (group) {
		c.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
		c.digest = EVP_sha256();
		if (!c.pkey || EVP_PKEY_get_octet_string_param(c.pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, c.praw,
		                                               sizeof c.praw, &c.praw_len) != 1)
			ossl_die("EC keygen");
	} else {
		c.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		c.praw_len = sizeof c.praw;
		if (!c.pkey || EVP_PKEY_get_raw_public_key(c.pkey, c.praw, &c.praw_len) != 1) ossl_die("Ed25519 keygen");
	}
	c.psig_len = sizeof c.psig;
	if (EVP_DigestSignInit(c.md, NULL, c.digest, NULL, c.pkey) != 1 ||
	    EVP_DigestSign(c.md, c.psig, &c.psig_len, c.msg, sizeof c.msg) != 1)
		ossl_die("sign");
	char cs[64];
	snprintf(cs, sizeof cs, "sign_%s", name);
	struct imp sign[] = {{"keystrata", ks_sign, &c}, {"openssl-evp", evp_sign, &c}};
	run(cs, sizeof c.msg, sign, 2);
	snprintf(cs, sizeof cs, "verify_%s", name);
	struct imp verify[] = {{"keystrata", ks_verify, &c}, {"openssl-evp", evp_verify, &c}};
	run(cs, sizeof c.msg, verify, 2);
	snprintf(cs, sizeof cs, "verify_signature_%s", name);
	struct imp vs[] = {{"keystrata", ks_verify_sig, &c}, {"openssl-evp", evp_verify_raw, &c}};
	run(cs, sizeof c.msg, vs, 2);
	EVP_MD_CTX_free(c.md);
	EVP_PKEY_free(c.pkey);
	ks_buffer_free(&c.pub);
	ks_keychain_free(c.kc);
}

enum { STREAM_TOTAL = 1 << 30, STREAM_CHUNK = 1 << 20, STREAM_ROOM = 3 << 20 };
static const uint8_t STREAM_AAD[] = "bench/stream";

struct stctx {
	ks_keychain *kc;
	EVP_CIPHER_CTX *enc, *dec;
	uint8_t *chunk, *out;      /* 1 MiB of plaintext; STREAM_ROOM bytes of output */
	uint8_t *stream;           /* a 1 GiB stream (stream_decrypt) */
	size_t stream_len;
	uint8_t *sealed;           /* 1,024 messages of 1 MiB, each with its tag (the decrypt peer) */
};

static void gcm_iv(uint8_t iv[12], uint64_t i) {
	memset(iv, 0, 12);
	for (int k = 0; k < 8; k++) iv[11 - k] = (uint8_t)(i >> (8 * k));
}

static void ks_stream_enc(void *a) {
	struct stctx *c = a;
	ks_stream_encryptor *enc = NULL;
	size_t n = 0;
	if (ks_stream_encryptor_new(c->kc, STREAM_AAD, sizeof STREAM_AAD - 1, &enc, &err) != KS_OK) die("encryptor_new");
	for (int i = 0; i < STREAM_TOTAL / STREAM_CHUNK; i++) {
		if (ks_stream_encrypt_update(enc, c->chunk, STREAM_CHUNK, c->out, STREAM_ROOM, &n, &err) != KS_OK)
			die("encrypt_update");
		sink += n;
	}
	if (ks_stream_encrypt_finish(enc, c->out, STREAM_ROOM, &n, &err) != KS_OK) die("encrypt_finish");
	sink += n;
	ks_stream_encryptor_free(enc);
}

static void evp_stream_enc(void *a) {
	struct stctx *c = a;
	uint8_t iv[12];
	int n = 0, m = 0;
	for (uint64_t i = 0; i < STREAM_TOTAL / STREAM_CHUNK; i++) {
		gcm_iv(iv, i);
		if (EVP_EncryptInit_ex(c->enc, NULL, NULL, NULL, iv) != 1 ||
		    EVP_EncryptUpdate(c->enc, c->out, &n, c->chunk, STREAM_CHUNK) != 1 ||
		    EVP_EncryptFinal_ex(c->enc, c->out + n, &m) != 1 ||
		    EVP_CIPHER_CTX_ctrl(c->enc, EVP_CTRL_GCM_GET_TAG, 16, c->out + STREAM_CHUNK) != 1)
			ossl_die("GCM encrypt");
		sink += c->out[0];
	}
}

static void ks_stream_dec(void *a) {
	struct stctx *c = a;
	ks_stream_decryptor *dec = NULL;
	size_t n = 0, total = 0;
	if (ks_stream_decryptor_new(c->kc, STREAM_AAD, sizeof STREAM_AAD - 1, &dec, &err) != KS_OK) die("decryptor_new");
	for (size_t off = 0; off < c->stream_len; off += STREAM_CHUNK) {
		size_t piece = c->stream_len - off < STREAM_CHUNK ? c->stream_len - off : STREAM_CHUNK;
		if (ks_stream_decrypt_update(dec, c->stream + off, piece, c->out, STREAM_ROOM, &n, &err) != KS_OK)
			die("decrypt_update");
		total += n;
	}
	if (ks_stream_decrypt_finish(dec, c->out, STREAM_ROOM, &n, &err) != KS_OK) die("decrypt_finish");
	total += n;
	if (total != STREAM_TOTAL) { fprintf(stderr, "bench: the stream decrypted to %zu bytes\n", total); exit(1); }
	sink += total;
	ks_stream_decryptor_free(dec);
}

static void evp_stream_dec(void *a) {
	struct stctx *c = a;
	uint8_t iv[12];
	int n = 0, m = 0;
	for (int i = 0; i < STREAM_TOTAL / STREAM_CHUNK; i++) {
		const uint8_t *msg = c->sealed + (size_t)i * (STREAM_CHUNK + 16);
		gcm_iv(iv, (uint64_t)i);
		if (EVP_DecryptInit_ex(c->dec, NULL, NULL, NULL, iv) != 1 ||
		    EVP_DecryptUpdate(c->dec, c->out, &n, msg, STREAM_CHUNK) != 1 ||
		    EVP_CIPHER_CTX_ctrl(c->dec, EVP_CTRL_GCM_SET_TAG, 16, (void *)(msg + STREAM_CHUNK)) != 1 ||
		    EVP_DecryptFinal_ex(c->dec, c->out + n, &m) != 1)
			ossl_die("GCM decrypt");
		sink += c->out[0];
	}
}

/* stream_encrypt and stream_decrypt at 1 GiB. */
static void streaming(void) {
	int enc = strncmp("stream_encrypt", only, strlen(only)) == 0;
	int dec = strncmp("stream_decrypt", only, strlen(only)) == 0;
	if (!enc && !dec) return;
	struct stctx c = {0};
	uint8_t key[32];
	RAND_bytes(key, 32);
	c.enc = EVP_CIPHER_CTX_new();
	c.dec = EVP_CIPHER_CTX_new();
	if (EVP_EncryptInit_ex(c.enc, EVP_aes_256_gcm(), NULL, key, NULL) != 1 ||
	    EVP_DecryptInit_ex(c.dec, EVP_aes_256_gcm(), NULL, key, NULL) != 1)
		ossl_die("GCM init");
	c.chunk = malloc(STREAM_CHUNK);
	c.out = malloc(STREAM_ROOM);
	if (!c.chunk || !c.out) { fprintf(stderr, "bench: out of memory\n"); exit(1); }
	memset(c.chunk, 0x5a, STREAM_CHUNK);
	if (ks_keychain_generate(NULL, &c.kc, &err) != KS_OK) die("generate");
	if (ks_keychain_rotate_streaming(c.kc, KS_STREAM_AES256_GCM_HKDF_1MB, NULL, &err) != KS_OK) die("rotate_streaming");
	if (enc) {
		struct imp e[] = {{"keystrata", ks_stream_enc, &c}, {"openssl-evp", evp_stream_enc, &c}};
		run("stream_encrypt", STREAM_TOTAL, e, 2);
	}
	if (dec) {
		/* The stream (the exact length the encryptor reports, call by call). */
		ks_stream_encryptor *e = NULL;
		size_t cap = (size_t)STREAM_TOTAL + (1 << 20), n = 0;
		c.stream = malloc(cap);
		if (!c.stream) { fprintf(stderr, "bench: out of memory\n"); exit(1); }
		if (ks_stream_encryptor_new(c.kc, STREAM_AAD, sizeof STREAM_AAD - 1, &e, &err) != KS_OK) die("encryptor_new");
		for (int i = 0; i < STREAM_TOTAL / STREAM_CHUNK; i++) {
			if (ks_stream_encrypt_update(e, c.chunk, STREAM_CHUNK, c.stream + c.stream_len, cap - c.stream_len, &n,
			                             &err) != KS_OK)
				die("encrypt_update");
			c.stream_len += n;
		}
		if (ks_stream_encrypt_finish(e, c.stream + c.stream_len, cap - c.stream_len, &n, &err) != KS_OK)
			die("encrypt_finish");
		c.stream_len += n;
		ks_stream_encryptor_free(e);
		/* The peer's 1 GiB: 1,024 messages, each followed by its tag. */
		uint8_t iv[12];
		int k = 0, m = 0;
		c.sealed = malloc((size_t)(STREAM_TOTAL / STREAM_CHUNK) * (STREAM_CHUNK + 16));
		if (!c.sealed) { fprintf(stderr, "bench: out of memory\n"); exit(1); }
		for (int i = 0; i < STREAM_TOTAL / STREAM_CHUNK; i++) {
			uint8_t *msg = c.sealed + (size_t)i * (STREAM_CHUNK + 16);
			gcm_iv(iv, (uint64_t)i);
			if (EVP_EncryptInit_ex(c.enc, NULL, NULL, NULL, iv) != 1 ||
			    EVP_EncryptUpdate(c.enc, msg, &k, c.chunk, STREAM_CHUNK) != 1 ||
			    EVP_EncryptFinal_ex(c.enc, msg + k, &m) != 1 ||
			    EVP_CIPHER_CTX_ctrl(c.enc, EVP_CTRL_GCM_GET_TAG, 16, msg + STREAM_CHUNK) != 1)
				ossl_die("GCM encrypt");
		}
		struct imp d[] = {{"keystrata", ks_stream_dec, &c}, {"openssl-evp", evp_stream_dec, &c}};
		run("stream_decrypt", STREAM_TOTAL, d, 2);
		free(c.sealed);
		free(c.stream);
	}
	ks_keychain_free(c.kc);
	free(c.chunk);
	free(c.out);
	EVP_CIPHER_CTX_free(c.enc);
	EVP_CIPHER_CTX_free(c.dec);
}

int main(int argc, char **argv) {
	if (argc > 1) only = argv[1];
	if (getenv("BENCH_ROUNDS")) ROUNDS = atoi(getenv("BENCH_ROUNDS"));
	if (ROUNDS < 1 || ROUNDS > 64) ROUNDS = 7;
	if (getenv("BENCH_SAMPLE_MS")) SAMPLE_S = atoi(getenv("BENCH_SAMPLE_MS")) / 1000.0;
	ks_keychain *kc;
	if (ks_keychain_generate(NULL, &kc, &err) != KS_OK) die("generate");
	uint8_t key[32];
	RAND_bytes(key, 32);
	EVP_CIPHER_CTX *evp = EVP_CIPHER_CTX_new();
	if (EVP_EncryptInit_ex(evp, EVP_aes_256_gcm(), NULL, key, NULL) != 1) return 1;
	size_t sizes[] = {64, 1024, 64 * 1024, 1024 * 1024};
	for (int i = 0; i < 4; i++) {
		size_t n = sizes[i];
		uint8_t *pt = calloc(1, n), *room = malloc(n + 128);
		struct ctx c = {kc, evp, pt, n, room};
		struct imp seal[] = {{"keystrata", ks_seal, &c}, {"openssl-evp", evp_seal, &c}};
		run("seal", n, seal, 2);
		struct imp seal_to[] = {{"keystrata", ks_seal_to, &c}, {"openssl-evp", evp_seal_room, &c}};
		run("seal_to", n, seal_to, 2);
		struct imp enc[] = {{"keystrata", ks_encrypt, &c}, {"openssl-evp", evp_seal, &c}};
		run("encrypt", n, enc, 2);
		free(pt);
		free(room);
	}
	streaming();
	signing(KS_ALG_ED25519, "ed25519", NULL);
	signing(KS_ALG_ECDSA_P256, "ecdsa-p256", "P-256");
	signing(KS_ALG_ECDSA_SECP256K1, "ecdsa-secp256k1", "secp256k1");
	EVP_CIPHER_CTX_free(evp);
	ks_keychain_free(kc);
	printf("{\"lang\":\"c\",\"case\":\"_version\",\"size\":0,\"impl\":\"%s\",\"unit\":\"\",\"samples\":[]}\n", OpenSSL_version(OPENSSL_VERSION));
	return 0;
}
