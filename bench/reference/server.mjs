// The benchmark's reference: node-oidc-provider with open dynamic client registration,
// registration management and its default in-memory adapter.
// Usage: node server.mjs PORT ROTATE(true|false)
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? 0);
const rotate = (process.argv[3] ?? 'true') === 'true';

const provider = new Provider(`http://127.0.0.1:${port}`, {
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: rotate },
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address();
  console.error(`listening on http://127.0.0.1:${actual}`);
});
