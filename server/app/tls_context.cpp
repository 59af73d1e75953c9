#include "server/app/tls_context.hpp"

#include <openssl/ssl.h>

namespace pushwire::server {

namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 suites of Mozilla's "intermediate" profile: ECDHE key exchange (forward secrecy) and AEAD
// ciphers only. No DHE suites: they would need a DH parameter file. TLS 1.3 keeps OpenSSL's
// default suites, which are all modern.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// The server speaks HTTP/1.1 only (WebSocket upgrades need it): it picks http/1.1 when the client
// offers it and answers without ALPN otherwise, so a client offering only h2 fails visibly at
// its own end instead of talking h2 to an HTTP/1.1 server.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen, void*) {
  static const unsigned char ours[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, ours, sizeof ours, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::shared_ptr<ssl::context> make_tls_context(const std::string& cert_file, const std::string& key_file,
                                               std::string& error) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  auto* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression | ssl::context::single_dh_use |
                   SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(native, tls12_ciphers) != 1) {
    error = "the TLS 1.2 cipher list is not supported by this OpenSSL";
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    error = "cannot load --tls-cert " + cert_file;
    error += ": ";
    error += ec.message();
    return nullptr;
  }
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) {
    error = "cannot load --tls-key " + key_file;
    error += ": ";
    error += ec.message();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    error = "--tls-key does not match the certificate in --tls-cert";
    return nullptr;
  }
  return ctx;
}

bool tls_context_source::load(const std::string& cert_file, const std::string& key_file, std::string& error) {
  auto ctx = make_tls_context(cert_file, key_file, error);
  if (!ctx) return false;
  std::lock_guard lk(mu_);
  ctx_ = std::move(ctx);
  return true;
}

std::shared_ptr<boost::asio::ssl::context> tls_context_source::current() const {
  std::lock_guard lk(mu_);
  return ctx_;
}

}  // namespace pushwire::server
