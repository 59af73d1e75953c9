// The TLS settings of the listener (--tls-cert, --tls-key): an OpenSSL context made from the PEM
// files, swapped whole on reload (SIGHUP). A connection takes the current context when it is
// accepted and keeps it to its end, so a reload never touches an open connection; the next
// handshake uses the new certificate.
#pragma once
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <mutex>
#include <string>

namespace pushwire::server {

// TLS 1.2 and 1.3 only, a modern cipher list, ALPN http/1.1. The certificate file may hold the
// whole chain (leaf first, then intermediates). Null and `error` set when a file is missing, does
// not parse, or the key does not match the certificate.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::string& cert_file, const std::string& key_file,
                                                            std::string& error);

class tls_context_source {
 public:
  // Builds a context from the files and makes it current; on failure the current one stays.
  bool load(const std::string& cert_file, const std::string& key_file, std::string& error);
  // Null while TLS is off.
  std::shared_ptr<boost::asio::ssl::context> current() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> ctx_;
};

}  // namespace pushwire::server
