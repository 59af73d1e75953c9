// A throwaway PKI made with the openssl command line: a root CA, an intermediate CA, and server
// certificates for 127.0.0.1 and localhost issued by the intermediate. The server's certificate file
// holds the chain (leaf, then intermediate), so a client that trusts only the root accepts it only
// if the server sends the whole chain (--tls-cert "chain supported").
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

// Returns { dir, caFile, ca (PEM text), issue(name) }; issue() makes a new leaf + key signed by the
// intermediate and returns { certFile (chain), keyFile, fingerprint }.
export async function makePki() {
  const dir = await mkdtemp(join(tmpdir(), 'pushwire-tls-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=Pushwire Test Root CA', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=Pushwire Test Intermediate CA', '-keyout', 'int.key', '-out', 'int.csr'], dir);
  await writeFile(join(dir, 'int.ext'),
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
  openssl(['x509', '-req', '-in', 'int.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-extfile', 'int.ext', '-out', 'int.pem'], dir);
  let serial = 0;
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    ca: await readFile(join(dir, 'ca.pem'), 'utf8'),
    async issue(name) {
      const base = `${name}-${++serial}`;
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-subj', `/CN=${name}`, '-keyout', `${base}.key`, '-out', `${base}.csr`], dir);
      await writeFile(join(dir, `${base}.ext`),
        'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' +
        'basicConstraints=critical,CA:FALSE\n');
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'int.pem', '-CAkey', 'int.key', '-CAcreateserial',
        '-days', '2', '-extfile', `${base}.ext`, '-out', `${base}.leaf.pem`], dir);
      const leaf = await readFile(join(dir, `${base}.leaf.pem`), 'utf8');
      const intermediate = await readFile(join(dir, 'int.pem'), 'utf8');
      const certFile = join(dir, `${base}.chain.pem`);
      await writeFile(certFile, leaf + intermediate);
      return { certFile, keyFile: join(dir, `${base}.key`), fingerprint: new X509Certificate(leaf).fingerprint256 };
    },
  };
}
