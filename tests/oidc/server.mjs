// Local OAuth 2.0 device-flow server for the Tokenkeeper end-to-end tests.
//
//   node server.mjs [--port N] [--access-ttl SECONDS] [--bao-redirect URI]
//
// --bao-redirect adds a confidential client for OpenBao's OIDC auth method
// (client id `openbao`, secret `openbao-test-secret`, authorization code flow)
// that may redirect to URI: the loopback address Tokenkeeper listens on.
//
// Listens on 127.0.0.1 only. stdout carries JSON lines only: first
// {"issuer":"http://127.0.0.1:PORT"}, then one line per provider event.
// Everything else (oidc-provider notices and warnings) goes to stderr.
import http from 'node:http';
import crypto from 'node:crypto';

// oidc-provider prints its "you SHOULD change ..." notices with console.info,
// i.e. on stdout. Keep stdout for our JSON lines only.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

// Dynamic import so the redirection above is in place first. Its Node 20
// "Unsupported runtime" warning goes to stderr (console.warn).
const { default: Provider } = await import('oidc-provider');

const CLIENT_ID = 'tokenkeeper-test';
const HOST = '127.0.0.1';

function parseArgs(argv) {
  const opts = { port: 0, accessTtl: 60, baoRedirects: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = () => {
      const v = argv[i + 1];
      i += 1;
      if (v === undefined || !/^\d+$/.test(v)) {
        throw new Error(`${arg} needs a non-negative integer`);
      }
      return Number(v);
    };
    if (arg === '--bao-redirect') {
      const v = argv[i + 1];
      i += 1;
      if (!v || !/^http:\/\/127\.0\.0\.1:\d+\//.test(v)) throw new Error('--bao-redirect needs a loopback URI');
      opts.baoRedirects.push(v);
      continue;
    }
    if (arg === '--port') opts.port = value();
    else if (arg === '--access-ttl') opts.accessTtl = value();
    else throw new Error(`unknown argument: ${arg}`);
  }
  if (opts.port > 65535) throw new Error('--port out of range');
  if (opts.accessTtl < 1) throw new Error('--access-ttl must be at least 1');
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(`server.mjs: ${err.message}`);
  console.error('usage: node server.mjs [--port N] [--access-ttl SECONDS] [--bao-redirect URI]');
  process.exit(2);
}

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const stats = {
  device_grants: 0, // successful device_code -> token exchanges
  refreshes: 0, // successful refresh_token grants
  invalid_grants: 0, // token endpoint answers with error=invalid_grant
  grants_revoked: 0,
  refresh_tokens_saved: 0,
  refresh_tokens_consumed: 0,
  authorization_pending: 0,
  server_errors: 0,
};

// Short, non-secret fingerprint of an opaque token value (its jti).
const fp = (jti) => (jti ? crypto.createHash('sha256').update(jti).digest('hex').slice(0, 12) : undefined);

let handler = (req, res) => {
  res.statusCode = 503;
  res.end();
};

const server = http.createServer((req, res) => {
  const path = (req.url || '').split('?')[0];
  if (path === '/_test/stats') {
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(stats));
    return;
  }
  handler(req, res);
});

server.on('error', (err) => {
  console.error(`server.mjs: ${err.message}`);
  process.exit(1);
});

await new Promise((resolve) => server.listen(opts.port, HOST, resolve));
const { port } = server.address();
const issuer = `http://${HOST}:${port}`;

// Ephemeral signing key (ID tokens), so the provider does not use its dev key.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_name: 'Tokenkeeper test client',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  }, ...(opts.baoRedirects.length ? [{
    client_id: 'openbao',
    client_secret: 'openbao-test-secret',
    client_name: 'OpenBao (OIDC auth method)',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: opts.baoRedirects,
    token_endpoint_auth_method: 'client_secret_basic',
  }] : [])],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access'],
  features: {
    deviceFlow: { enabled: true },
    devInteractions: { enabled: true },
    revocation: { enabled: true },
  },
  // Any login is accepted by devInteractions; every account exists.
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  issueRefreshToken(ctx, client, source) {
    return client.clientId === CLIENT_ID && source.scopes.has('offline_access');
  },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: opts.accessTtl,
    IdToken: 3600,
    DeviceCode: 600,
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
  },
});

provider.on('device_authorization.success', (ctx) => {
  emit({ event: 'device_authorization.success', client_id: ctx.oidc.client?.clientId });
});
provider.on('grant.success', (ctx) => {
  const grantType = ctx.oidc.params?.grant_type;
  if (grantType === 'refresh_token') stats.refreshes += 1;
  else if (grantType === 'urn:ietf:params:oauth:grant-type:device_code') stats.device_grants += 1;
  emit({ event: 'grant.success', grant_type: grantType });
});
provider.on('grant.error', (ctx, err) => {
  const error = err.error || err.name;
  if (error === 'invalid_grant') stats.invalid_grants += 1;
  if (error === 'authorization_pending') stats.authorization_pending += 1;
  emit({
    event: 'grant.error',
    error,
    // error_detail is the specific reason ("refresh token already used");
    // error_description is the generic text the client receives.
    description: err.error_detail || err.error_description,
    grant_type: ctx.oidc?.params?.grant_type,
  });
});
provider.on('grant.revoked', (ctx, grantId) => {
  stats.grants_revoked += 1;
  emit({ event: 'grant.revoked', grant: fp(grantId) });
});
provider.on('refresh_token.saved', (token) => {
  stats.refresh_tokens_saved += 1;
  emit({ event: 'refresh_token.saved', token: fp(token.jti), rotations: token.rotations || 0 });
});
provider.on('refresh_token.consumed', (token) => {
  stats.refresh_tokens_consumed += 1;
  emit({ event: 'refresh_token.consumed', token: fp(token.jti) });
});
provider.on('server_error', (ctx, err) => {
  stats.server_errors += 1;
  emit({ event: 'server_error', error: err.name, description: err.message });
});

handler = provider.callback();

emit({ issuer });

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
