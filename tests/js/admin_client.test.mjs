// A real admin client against the sandbox: the Amplify v6 JavaScript library (what the admin UI uses)
// signs in over SRP, creates an Account, a Position and its ENTRY Action, subscribes, claims the action,
// and sees the running agent's updates arrive over AppSync's realtime protocol.
//
// Run by tests/js/test_amplify_admin_client.py, which starts the sandbox and the agent and passes
// SANDBOX_INFO (what `python -m hedge_agent.sandbox --print-json` prints) and AGENT_ACCOUNT_ID.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Amplify } from 'aws-amplify';
import { generateClient } from 'aws-amplify/api';
import { fetchAuthSession, signIn } from 'aws-amplify/auth';
import WebSocket from 'ws';

const info = JSON.parse(process.env.SANDBOX_INFO ?? 'null');
const agentAccountId = process.env.AGENT_ACCOUNT_ID;
const USER = 'alice';

// Node 20 has no global WebSocket; Amplify's realtime provider uses the global one. Amplify always opens
// wss:// (AppSync is TLS only); the sandbox on 127.0.0.1 serves plain ws, so only the scheme is changed.
// The subprotocols (graphql-ws and the header-<base64url> authorization) pass through as Amplify sets them.
class LoopbackWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(String(url).replace(/^wss:\/\/127\.0\.0\.1:/, 'ws://127.0.0.1:'), protocols);
    LoopbackWebSocket.opened.push({ url: String(url), protocols });
  }
}
LoopbackWebSocket.opened = [];
globalThis.WebSocket = LoopbackWebSocket;

const POSITION_FIELDS =
  'id userId accountId executionType status symbol volume entryPrice entryTime exitPrice exitTime ' +
  'exitReason trailWidth triggerActionIds mtTicket memo createdAt updatedAt';
const ACTION_FIELDS = 'id userId accountId positionId triggerPositionId type status createdAt updatedAt';
const ACCOUNT_FIELDS =
  'id userId brokerType accountNumber serverName displayName balance credit equity isActive lastUpdated ' +
  'createdAt updatedAt';

const CREATE_ACCOUNT = `mutation($input: CreateAccountInput!) { createAccount(input: $input) { ${ACCOUNT_FIELDS} } }`;
const CREATE_POSITION = `mutation($input: CreatePositionInput!) { createPosition(input: $input) { ${POSITION_FIELDS} } }`;
const UPDATE_POSITION = `mutation($input: UpdatePositionInput!, $condition: ModelPositionConditionInput) {
  updatePosition(input: $input, condition: $condition) { ${POSITION_FIELDS} } }`;
const CREATE_ACTION = `mutation($input: CreateActionInput!) { createAction(input: $input) { ${ACTION_FIELDS} } }`;
const UPDATE_ACTION = `mutation($input: UpdateActionInput!, $condition: ModelActionConditionInput) {
  updateAction(input: $input, condition: $condition) { ${ACTION_FIELDS} } }`;
const ON_UPDATE_POSITION = `subscription($filter: ModelSubscriptionPositionFilterInput) {
  onUpdatePosition(filter: $filter) { ${POSITION_FIELDS} } }`;
const ON_UPDATE_ACTION = `subscription($filter: ModelSubscriptionActionFilterInput) {
  onUpdateAction(filter: $filter) { ${ACTION_FIELDS} } }`;

function until(what, check, timeoutMs) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      const value = check();
      if (value) {
        clearInterval(timer);
        resolve(value);
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer);
        reject(new Error(`${what}: not within ${timeoutMs} ms`));
      }
    }, 50);
  });
}

test('the Amplify v6 admin client signs in, writes, subscribes and sees the agent execute', async (t) => {
  assert.ok(info, 'SANDBOX_INFO is not set: run this through tests/js/test_amplify_admin_client.py');
  assert.ok(agentAccountId, 'AGENT_ACCOUNT_ID is not set');
  const alice = info.users.find((u) => u.username === USER);
  Amplify.configure({
    Auth: {
      Cognito: {
        userPoolId: info.user_pool_id,
        userPoolClientId: info.client_id,
        userPoolEndpoint: info.cognito_endpoint,
      },
    },
    API: { GraphQL: { endpoint: info.graphql_url, region: info.region, defaultAuthMode: 'userPool' } },
  });

  const signedIn = await signIn({ username: USER, password: alice.password });
  assert.equal(signedIn.isSignedIn, true, JSON.stringify(signedIn));
  const session = await fetchAuthSession();
  const sub = session.tokens.accessToken.payload.sub;
  assert.equal(sub, alice.sub);
  assert.equal(session.tokens.accessToken.payload.token_use, 'access');

  const client = generateClient();
  const run = async (query, variables) => (await client.graphql({ query, variables })).data;

  // an Account of its own, then a Position and its ENTRY Action on the account the agent trades
  const account = (
    await run(CREATE_ACCOUNT, {
      input: {
        userId: sub, brokerType: 'MT5', accountNumber: '880001', serverName: 'Sim-Server',
        displayName: 'made by Amplify', balance: 1000, credit: 0, equity: 1000, isActive: true,
        lastUpdated: '2026-01-01T00:00:00.000Z',
      },
    })
  ).createAccount;
  assert.equal(account.userId, sub);
  const position = (
    await run(CREATE_POSITION, {
      input: {
        userId: sub, accountId: agentAccountId, executionType: 'ENTRY', status: 'PENDING', symbol: 'USDJPY',
        volume: 0.1, trailWidth: 0, triggerActionIds: '[]', memo: 'amplify',
      },
    })
  ).createPosition;
  const action = (
    await run(CREATE_ACTION, {
      input: { userId: sub, accountId: agentAccountId, positionId: position.id, type: 'ENTRY', status: 'PENDING' },
    })
  ).createAction;

  const positions = [];
  const actions = [];
  const errors = [];
  const mine = { userId: { eq: sub } };
  const subs = [
    client.graphql({ query: ON_UPDATE_POSITION, variables: { filter: mine } }).subscribe({
      next: ({ data }) => positions.push(data.onUpdatePosition),
      error: (e) => errors.push(e),
    }),
    client.graphql({ query: ON_UPDATE_ACTION, variables: { filter: mine } }).subscribe({
      next: ({ data }) => actions.push(data.onUpdateAction),
      error: (e) => errors.push(e),
    }),
  ];
  t.after(() => subs.forEach((s) => s.unsubscribe()));

  // sentinel: touch the position until its update arrives, so both subscriptions are live before the claim
  let pings = 0;
  await until(
    'the subscription to deliver a sentinel update',
    () => {
      if (positions.some((p) => p.id === position.id && p.memo?.startsWith('ping'))) return true;
      pings += 1;
      run(UPDATE_POSITION, {
        input: { id: position.id, status: 'PENDING', memo: `ping ${pings}` },
        condition: { status: { eq: 'PENDING' } },
      }).catch((e) => errors.push(e));
      return false;
    },
    20_000,
  );
  assert.deepEqual(errors, []);
  const socket = LoopbackWebSocket.opened[0];
  assert.ok(socket.url.startsWith('wss://') && !socket.url.includes('header='), socket.url);
  assert.equal(socket.protocols[0], 'graphql-ws');
  assert.match(socket.protocols[1], /^header-[A-Za-z0-9_-]+$/);

  // the UI claims the ENTRY action; the agent opens the position on its terminal and reports both
  const claimed = (
    await run(UPDATE_ACTION, { input: { id: action.id, status: 'EXECUTING' }, condition: { status: { eq: 'PENDING' } } })
  ).updateAction;
  assert.equal(claimed.status, 'EXECUTING');
  const opened = await until(
    'the agent to open the position',
    () => positions.find((p) => p.id === position.id && p.status === 'OPEN'),
    30_000,
  );
  assert.ok(opened.mtTicket, JSON.stringify(opened));
  assert.ok(opened.entryPrice > 0, JSON.stringify(opened));
  await until('the action to be EXECUTED', () => actions.find((a) => a.id === action.id && a.status === 'EXECUTED'), 30_000);
  assert.ok(positions.some((p) => p.id === position.id && p.status === 'OPENING'), 'OPENING came first');
  assert.deepEqual(errors, []);
});
