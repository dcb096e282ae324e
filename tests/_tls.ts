/**
 * Certificates for TLS tests, made at test time with Debian's `openssl`: a CA, a server and a
 * client certificate it signed (for `localhost` and 127.0.0.1), and a self-signed "rogue" pair
 * no test CA vouches for.
 *
 * @module
 */

/** PEM texts and the files they were written to. */
export interface TestCertificates {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly rogueCert: string;
  readonly rogueKey: string;
  /** `dir/<name>`, for peers that read files (nngcat `--cert`). */
  path(name: string): string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const output = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!output.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
const NAMES = "subjectAltName=DNS:localhost,IP:127.0.0.1";

/** Makes a fresh CA and certificates in a new temporary directory (remove it when done). */
export async function makeCertificates(): Promise<TestCertificates> {
  const dir = await Deno.makeTempDir({ prefix: "rsock_tls_" });
  await openssl(dir, [
    "req",
    "-x509",
    ...EC,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=rsock test CA",
  ]);
  for (const name of ["server", "client"]) {
    await openssl(dir, [
      "req",
      ...EC,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      "/CN=localhost",
    ]);
    await Deno.writeTextFile(
      `${dir}/${name}.ext`,
      `${NAMES}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n`,
    );
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    ]);
  }
  await openssl(dir, [
    "req",
    "-x509",
    ...EC,
    "-keyout",
    "rogue.key",
    "-out",
    "rogue.crt",
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
    "-addext",
    NAMES,
  ]);
  const read = (name: string) => Deno.readTextFile(`${dir}/${name}`);
  return {
    dir,
    ca: await read("ca.crt"),
    serverCert: await read("server.crt"),
    serverKey: await read("server.key"),
    clientCert: await read("client.crt"),
    clientKey: await read("client.key"),
    rogueCert: await read("rogue.crt"),
    rogueKey: await read("rogue.key"),
    path: (name) => `${dir}/${name}`,
  };
}
