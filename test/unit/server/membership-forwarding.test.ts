// MemberBackend's membership changes on a follower and on the leader, with a stub node,
// registry and peer transport: a follower never proposes a change itself but asks the
// leader and relays its verdict; the leader's side never asks anyone. The real thing
// end to end is test/integration/membership-forwarding.test.ts.

import { afterEach, describe, expect, it } from 'vitest';
import { CairnError } from '../../../src/errors.js';
import { memberIdFor } from '../../../src/node/config.js';
import type { MemberRecord } from '../../../src/node/members.js';
import { NotAcceptedError } from '../../../src/node/waiters.js';
import { NONE, nodeId, type ConfChange, type NodeId } from '../../../src/raft/index.js';
import { MemberBackend, type MemberBackendOptions } from '../../../src/server/member-backend.js';
import { PeerRequestFailedError, PeerRequestRefusedError, PeerRequestTimeoutError } from '../../../src/transport/errors.js';
import type { MembershipChange, MembershipOutcome, MembershipRequestOptions } from '../../../src/transport/transport.js';

const SELF = nodeId('aaaaaaaaaaaaaaaa');
const LEADER = nodeId('bbbbbbbbbbbbbbbb');
const LEARNER = nodeId('cccccccccccccccc');

interface Harness {
  backend: MemberBackend;
  members: Map<NodeId, MemberRecord>;
  proposed: ConfChange[];
  asked: { to: NodeId; change: MembershipChange; options: MembershipRequestOptions }[];
  softState: { role: string; lead: NodeId };
}

const backends: MemberBackend[] = [];
afterEach(() => {
  for (const backend of backends.splice(0)) backend.close();
});

function member(id: NodeId, isLearner = false): MemberRecord {
  return { id, name: id.slice(0, 2), peerUrls: [`http://127.0.0.1:${id.charCodeAt(0)}`], clientUrls: [], isLearner };
}

/**
 * A backend over stubs. `answer` is what the leader says when asked (a rejection stands for
 * the transport failing); `propose` what the local core does with a proposal.
 */
function harness(options: {
  role: 'leader' | 'follower';
  lead: NodeId;
  answer?: (change: MembershipChange) => Promise<MembershipOutcome>;
  propose?: (change: ConfChange, members: Map<NodeId, MemberRecord>) => void;
}): Harness {
  const members = new Map<NodeId, MemberRecord>([SELF, LEADER].map((id) => [id, member(id)]));
  members.set(LEARNER, member(LEARNER, true));
  const h: Harness = { backend: undefined as unknown as MemberBackend, members, proposed: [], asked: [], softState: { role: options.role, lead: options.lead } };
  const node = {
    id: SELF,
    status: () => ({ softState: h.softState, hardState: { term: 3, vote: NONE, commit: 10 }, confState: { voters: [], learners: [] } }),
    proposeConfChange: (change: ConfChange) => {
      h.proposed.push(change);
      options.propose?.(change, members);
    },
  };
  h.backend = new MemberBackend({
    node,
    store: { revision: 7 },
    hub: {},
    members: { get: (id: NodeId) => members.get(id), list: () => [...members.values()] },
    leases: {},
    name: 'n1',
    clusterToken: 'test-cluster',
    dbSizeBytes: async () => 0,
    quotaBackendBytes: 1 << 30,
    requestTimeoutMs: 2000,
    peers: {
      requestMembershipChange: (to: NodeId, change: MembershipChange, requestOptions: MembershipRequestOptions) => {
        h.asked.push({ to, change, options: requestOptions });
        return (options.answer ?? (async () => ({ applied: true }) as const))(change);
      },
    },
  } as unknown as MemberBackendOptions);
  backends.push(h.backend);
  return h;
}

/** The API error a call ends with (code and message), or a failure of the test. */
async function apiErrorOf(call: Promise<unknown>): Promise<CairnError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CairnError);
  return error as CairnError;
}

const soon = (): AbortSignal => AbortSignal.timeout(2000);

describe('a membership change asked of a follower', () => {
  it('is refused at once with Unavailable when no leader is known, and goes nowhere', async () => {
    const h = harness({ role: 'follower', lead: NONE });
    const error = await apiErrorOf(h.backend.promoteMember(LEARNER, soon()));
    expect(error.code).toBe('Unavailable');
    expect(error.message).toMatch(/no leader/);
    expect(h.asked).toEqual([]);
    expect(h.proposed).toEqual([]);
  });

  it("goes to the leader, not to the local core, and relays the leader's refusal with its reason", async () => {
    const h = harness({ role: 'follower', lead: LEADER, answer: async () => ({ applied: false, code: 'Unavailable', message: 'not accepted: learner-not-caught-up' }) });
    const error = await apiErrorOf(h.backend.promoteMember(LEARNER, soon()));
    expect(error.code).toBe('Unavailable');
    expect(error.message).toBe('not accepted: learner-not-caught-up');
    expect(h.asked.map(({ to, change, options }) => ({ to, change, timeoutMs: options.timeoutMs }))).toEqual([{ to: LEADER, change: { op: 'promote', memberId: LEARNER }, timeoutMs: 2000 }]);
    expect(h.proposed).toEqual([]);
    expect(h.members.get(LEARNER)?.isLearner).toBe(true);
  });

  it("relays each of the leader's API errors with its code", async () => {
    for (const code of ['InvalidArgument', 'KeyNotFound', 'Unavailable', 'Timeout'] as const) {
      const h = harness({ role: 'follower', lead: LEADER, answer: async () => ({ applied: false, code, message: `the leader says ${code}` }) });
      const error = await apiErrorOf(h.backend.removeMember(LEARNER, soon()));
      expect({ code: error.code, message: error.message }).toEqual({ code, message: `the leader says ${code}` });
    }
  });

  it('answers once the change the leader applied is applied here too, with the member list showing it', async () => {
    const h = harness({ role: 'follower', lead: LEADER });
    const promoted = h.backend.promoteMember(LEARNER, soon());
    let settled = false;
    void promoted.then(() => (settled = true));
    // Applied by the leader, not yet here. A negative check: after several of its 20 ms polls it must still wait.
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(h.asked).toHaveLength(1);
    expect(settled).toBe(false);
    h.members.set(LEARNER, member(LEARNER, false));
    const answer = await promoted;
    expect(answer.members.find((m) => m.id === LEARNER)?.isLearner).toBe(false);
    expect(h.proposed).toEqual([]);
  });

  it('adds through the leader and answers with the new member', async () => {
    const h = harness({ role: 'follower', lead: LEADER, answer: async () => ({ applied: true }) });
    const adding = h.backend.addMember(['http://127.0.0.1:2410'], true, soon());
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(h.asked.map(({ change }) => change)).toEqual([{ op: 'add', peerUrls: ['http://127.0.0.1:2410'], learner: true }]);
    // What the leader's conf change makes of it here (the id follows from the URLs and the token).
    const id = nodeId(memberIdFor(['http://127.0.0.1:2410'], 'test-cluster'));
    h.members.set(id, { id, name: '', peerUrls: ['http://127.0.0.1:2410'], clientUrls: [], isLearner: true });
    const answer = await adding;
    expect(answer.member).toMatchObject({ id, isLearner: true });
  });

  it('is Timeout when the leader applied it but this member has not by the deadline', async () => {
    const h = harness({ role: 'follower', lead: LEADER });
    const error = await apiErrorOf(h.backend.promoteMember(LEARNER, AbortSignal.timeout(100)));
    expect(error.code).toBe('Timeout');
  });

  it('is Unavailable when the request never reached the leader, and Timeout when its outcome is unknown', async () => {
    const cases: [Error, string][] = [
      [new PeerRequestRefusedError('member bbbb refused the membership request (403)'), 'Unavailable'],
      [new PeerRequestTimeoutError(2000), 'Timeout'],
      [new PeerRequestFailedError('connection reset'), 'Timeout'],
    ];
    for (const [failure, code] of cases) {
      const h = harness({ role: 'follower', lead: LEADER, answer: async () => Promise.reject(failure) });
      const error = await apiErrorOf(h.backend.promoteMember(LEARNER, soon()));
      expect(error.code, failure.name).toBe(code);
      expect(error.message, failure.name).toContain(failure.message);
    }
  });

  it('checks what it can itself first: an unknown member, a voter to promote, a member that exists', async () => {
    const h = harness({ role: 'follower', lead: LEADER });
    expect((await apiErrorOf(h.backend.promoteMember('dddddddddddddddd', soon()))).code).toBe('KeyNotFound');
    expect((await apiErrorOf(h.backend.promoteMember(LEADER, soon()))).code).toBe('InvalidArgument');
    const existing = nodeId(memberIdFor(['http://127.0.0.1:2410'], 'test-cluster'));
    h.members.set(existing, { id: existing, name: 'n4', peerUrls: ['http://127.0.0.1:2410'], clientUrls: [], isLearner: true });
    expect((await apiErrorOf(h.backend.addMember(['http://127.0.0.1:2410'], false, soon()))).code).toBe('InvalidArgument');
    expect(h.asked).toEqual([]);
  });
});

describe("the leader's side of a change another member asked for", () => {
  it('answers Unavailable, without proposing or asking anyone, when this member is not the leader', async () => {
    for (const lead of [NONE, LEADER]) {
      const h = harness({ role: 'follower', lead });
      const outcome = await h.backend.serveMembershipChange({ op: 'promote', memberId: LEARNER }, soon());
      expect(outcome).toMatchObject({ applied: false, code: 'Unavailable', message: expect.stringMatching(/not the leader/) });
      expect(h.proposed).toEqual([]);
      expect(h.asked).toEqual([]);
    }
  });

  it("answers the core's refusal with its reason at once", async () => {
    const h = harness({
      role: 'leader',
      lead: SELF,
      propose: () => {
        throw new NotAcceptedError('learner-not-caught-up');
      },
    });
    const outcome = await h.backend.serveMembershipChange({ op: 'promote', memberId: LEARNER }, soon());
    expect(outcome).toEqual({ applied: false, code: 'Unavailable', message: 'not accepted: learner-not-caught-up' });
    expect(h.asked).toEqual([]);
  });

  it('answers the checks a local request gets: KeyNotFound, InvalidArgument', async () => {
    const h = harness({ role: 'leader', lead: SELF });
    expect(await h.backend.serveMembershipChange({ op: 'remove', memberId: 'dddddddddddddddd' }, soon())).toMatchObject({ applied: false, code: 'KeyNotFound' });
    expect(await h.backend.serveMembershipChange({ op: 'promote', memberId: LEADER }, soon())).toMatchObject({ applied: false, code: 'InvalidArgument' });
    expect(h.proposed).toEqual([]);
  });

  it('proposes, waits until applied, and answers applied; or Timeout when not applied by the deadline', async () => {
    const applies = harness({ role: 'leader', lead: SELF, propose: (_change, members) => void setTimeout(() => members.set(LEARNER, member(LEARNER, false)), 30) });
    expect(await applies.backend.serveMembershipChange({ op: 'promote', memberId: LEARNER }, soon())).toEqual({ applied: true });
    expect(applies.proposed).toEqual([{ type: 'addNode', nodeId: LEARNER }]);
    const never = harness({ role: 'leader', lead: SELF });
    expect(await never.backend.serveMembershipChange({ op: 'remove', memberId: LEARNER }, AbortSignal.timeout(100))).toMatchObject({ applied: false, code: 'Timeout' });
    expect(never.asked).toEqual([]);
  });
});
