#include "controller/secret_store.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/names.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

constexpr int kKeyBytes = 32;
constexpr int kNonceBytes = 12;
constexpr int kTagBytes = 16;

struct CipherCtx {
  CipherCtx() : ctx(EVP_CIPHER_CTX_new()) {}
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
  EVP_CIPHER_CTX* ctx;
};

const unsigned char* Bytes(const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* Bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

std::string Random(int n) {
  std::string out(static_cast<size_t>(n), '\0');
  RAND_bytes(Bytes(out), n);
  return out;
}

// AES-256-GCM with `name` as additional data: the record decrypts only as itself.
absl::StatusOr<std::string> Seal(const std::string& key, const std::string& nonce, const std::string& name,
                                 const std::string& value) {
  CipherCtx c;
  std::string out(value.size() + kTagBytes, '\0');
  int len = 0, total = 0;
  if (c.ctx == nullptr || EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, Bytes(key), Bytes(nonce)) != 1 ||
      EVP_EncryptUpdate(c.ctx, nullptr, &len, Bytes(name), static_cast<int>(name.size())) != 1 ||
      EVP_EncryptUpdate(c.ctx, Bytes(out), &len, Bytes(value), static_cast<int>(value.size())) != 1) {
    return absl::InternalError("cannot encrypt the secret (OpenSSL)");
  }
  total = len;
  if (EVP_EncryptFinal_ex(c.ctx, Bytes(out) + total, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, Bytes(out) + value.size()) != 1) {
    return absl::InternalError("cannot encrypt the secret (OpenSSL)");
  }
  return out;
}

absl::StatusOr<std::string> Unseal(const std::string& key, const v1::SecretRecord& record) {
  const std::string& sealed = record.ciphertext();
  if (record.nonce().size() != kNonceBytes || sealed.size() < kTagBytes) {
    return absl::DataLossError("the record is malformed");
  }
  const std::string& name = record.info().name();
  const size_t size = sealed.size() - kTagBytes;
  std::string out(size, '\0');
  std::string tag = sealed.substr(size);
  CipherCtx c;
  int len = 0;
  if (c.ctx == nullptr ||
      EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, Bytes(key), Bytes(record.nonce())) != 1 ||
      EVP_DecryptUpdate(c.ctx, nullptr, &len, Bytes(name), static_cast<int>(name.size())) != 1 ||
      EVP_DecryptUpdate(c.ctx, Bytes(out), &len, Bytes(sealed), static_cast<int>(size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, Bytes(tag)) != 1 ||
      EVP_DecryptFinal_ex(c.ctx, Bytes(out) + len, &len) != 1) {
    return absl::DataLossError("it does not decrypt with this key");
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SecretStore>> SecretStore::Open(const std::string& key_path, StateStore* state,
                                                               const std::vector<v1::SecretRecord>& records) {
  absl::StatusOr<std::string> key = ReadFileToString(key_path);
  if (absl::IsNotFound(key.status()) && records.empty()) {
    key = Random(kKeyBytes);
    RETURN_IF_ERROR(WriteFileAtomically(key_path, *key, 0600));
  } else if (absl::IsNotFound(key.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        key_path, " is missing, so the ", records.size(),
        " secret(s) saved in the state database cannot be read: restore the file from a backup of the data dir"));
  }
  if (!key.ok()) return key.status();
  if (key->size() != kKeyBytes) {
    return absl::FailedPreconditionError(absl::StrCat(key_path, " is ", key->size(), " bytes; a secrets key is ",
                                                      kKeyBytes, " random bytes"));
  }
  std::unique_ptr<SecretStore> store(new SecretStore(*key, state));
  absl::MutexLock lock(&store->mu_);
  for (const v1::SecretRecord& record : records) {
    absl::StatusOr<std::string> value = Unseal(*key, record);
    if (!value.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("secret ", record.info().name(), " in the state database: ",
                                                        value.status().message(), " (", key_path, ")"));
    }
    store->secrets_[record.info().name()] = {record.info(), *std::move(value)};
  }
  return store;
}

absl::StatusOr<bool> SecretStore::Set(const std::string& name, const std::string& value, const std::string& by) {
  if (!IsEnvName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("bad secret name \"", name,
                                                   "\": secrets are environment variables (letters, digits and '_')"));
  }
  if (value.size() < kMinSecretBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the value of secret ", name, " is ", value.size(),
                                                   " bytes; at least ", kMinSecretBytes,
                                                   " are needed (shorter ones cannot be masked in logs)"));
  }
  if (value.size() > kMaxSecretBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the value of secret ", name, " is ", value.size(),
                                                   " bytes; at most ", kMaxSecretBytes, " fit in an environment"));
  }
  if (value.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("the value of secret ", name,
                                                   " holds a NUL byte, which no environment variable can"));
  }
  v1::SecretRecord record;
  record.mutable_info()->set_name(name);
  record.mutable_info()->set_updated_unix_ms(absl::ToUnixMillis(absl::Now()));
  record.mutable_info()->set_updated_by(by);
  record.set_nonce(Random(kNonceBytes));
  ASSIGN_OR_RETURN(std::string sealed, Seal(key_, record.nonce(), name, value));
  record.set_ciphertext(std::move(sealed));
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(state_->SaveSecret(record));
  const bool replaced = secrets_.count(name) != 0;
  secrets_[name] = {record.info(), value};
  return replaced;
}

absl::Status SecretStore::Delete(const std::string& name) {
  absl::MutexLock lock(&mu_);
  if (secrets_.count(name) == 0) return absl::NotFoundError(absl::StrCat("no secret named ", name));
  RETURN_IF_ERROR(state_->DeleteSecret(name));
  secrets_.erase(name);
  return absl::OkStatus();
}

std::vector<v1::SecretInfo> SecretStore::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::SecretInfo> out;
  for (const auto& [name, secret] : secrets_) out.push_back(secret.first);
  return out;
}

absl::StatusOr<std::vector<v1::SecretValue>> SecretStore::Values(const std::vector<std::string>& names) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::SecretValue> out;
  for (const std::string& name : names) {
    auto it = secrets_.find(name);
    if (it == secrets_.end()) {
      return absl::FailedPreconditionError(absl::StrCat("secret ", name, " is not set (an admin sets it with "
                                                        "`dockyard secrets set ", name, "`)"));
    }
    v1::SecretValue& value = out.emplace_back();
    value.set_name(name);
    value.set_value(it->second.second);
  }
  return out;
}

}  // namespace dockyard
