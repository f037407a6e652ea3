package keystrata

/*
#include "keystrata.h"
*/
import "C"

import "time"

// AwsKmsConfig names a key kept in AWS KMS, for NewAwsKmsRoot (a symmetric
// SYMMETRIC_DEFAULT key) or NewAwsKmsSigner (an ECC_NIST_P256 or
// ECC_SECG_P256K1 SIGN_VERIFY key).
//
// It holds no secret: credentials come from the AWS SDK's default chain
// (AWS_ACCESS_KEY_ID and friends, the shared config and credentials files
// and their profiles, web identity as GitHub's OIDC and EKS provide, ECS
// and EC2 roles). docs/AWS-KMS.md has the setup and IAM permissions.
type AwsKmsConfig struct {
	// KeyID is a key ID, key ARN, alias name ("alias/...") or alias ARN.
	// An alias is resolved once, when the root or signer is opened.
	KeyID string
	// Region: "" for the key ARN's region, else the SDK's chain
	// (AWS_REGION, the profile's region).
	Region string
	// EndpointURL: "" for the region's KMS endpoint; else a VPC or FIPS
	// endpoint, or a local stand-in such as moto's server.
	EndpointURL string
	// Profile: a named profile of the shared config files ("" for
	// AWS_PROFILE, else "default").
	Profile string
	// Timeout bounds every KMS call, its retries and the fetching of
	// credentials included (0: 5 s; at most 1 hour).
	Timeout time.Duration
}

// NewAwsKmsRoot opens a root whose key is a symmetric AWS KMS key: data
// keys are wrapped with KMS Encrypt under an encryption context that binds
// keystrata's context, and a keychain saved under it takes one KMS call
// per save or load. The key is checked (DescribeKey: enabled, symmetric,
// ENCRYPT_DECRYPT) before it returns.
//
// Errors: ErrInvalidInput (empty or malformed key, an endpoint URL with
// user information, bad Timeout, no region anywhere), ErrUnavailable (KMS
// unreachable or not answering within the timeout), ErrBackend
// (credentials missing or refused, no permission, throttling), ErrUnknownKey (no such key or alias), ErrKeyDisabled (disabled
// key), ErrKeyDestroyed (pending deletion), ErrUnsupported (not a
// symmetric encryption key).
func NewAwsKmsRoot(cfg AwsKmsConfig) (*Root, error) {
	var out *C.ks_root
	err := awsKmsOpen(cfg, func(key, region, endpoint, profile *C.char, ms C.uint32_t, cerr **C.ks_error) C.enum_ks_status {
		return C.ks_root_aws_kms_new(key, region, endpoint, profile, ms, &out, cerr)
	})
	if err != nil {
		return nil, err
	}
	return newRoot(out), nil
}

// NewAwsKmsSigner opens a signing key kept in AWS KMS (ECC_NIST_P256 or
// ECC_SECG_P256K1, SIGN_VERIFY): the key is checked and its public key
// fetched before it returns. Sign hashes the message here and calls KMS
// Sign with MessageType=DIGEST and ECDSA_SHA_256; every signature is
// checked against the public key before it is returned. The key never
// leaves KMS.
//
// Errors: as NewAwsKmsRoot; ErrUnsupported for a key of another spec or
// usage (RSA, P-384, symmetric...). Once the key is disabled in KMS, Sign
// fails with ErrKeyDisabled.
func NewAwsKmsSigner(cfg AwsKmsConfig) (*Signer, error) {
	var out *C.ks_signer
	err := awsKmsOpen(cfg, func(key, region, endpoint, profile *C.char, ms C.uint32_t, cerr **C.ks_error) C.enum_ks_status {
		return C.ks_signer_aws_kms_new(key, region, endpoint, profile, ms, &out, cerr)
	})
	if err != nil {
		return nil, err
	}
	return newSigner(out, nil), nil
}

// awsKmsOpen translates an AwsKmsConfig into the C arguments both
// constructors take, and their status into an error.
func awsKmsOpen(cfg AwsKmsConfig, open func(key, region, endpoint, profile *C.char, ms C.uint32_t, cerr **C.ks_error) C.enum_ks_status) error {
	if hasNUL(cfg.KeyID, cfg.Region, cfg.EndpointURL, cfg.Profile) {
		return newError(C.KS_ERR_INVALID_INPUT, "an AWS KMS setting contains a NUL byte")
	}
	ms, err := timeoutMillis(cfg.Timeout)
	if err != nil {
		return err
	}
	var cs cStrings
	defer cs.done()
	var cerr *C.ks_error
	st := open(cs.add(cfg.KeyID), cs.opt(cfg.Region), cs.opt(cfg.EndpointURL), cs.opt(cfg.Profile), ms, &cerr)
	return cErr(st, cerr)
}
