import { describe, expect, it } from 'vitest';
import { nodeId } from '../../src/raft/index.js';
import { Cluster } from '../sim/cluster.js';

describe('membership changes on the leader', () => {
  it('refuses to promote a learner that does not hold everything committed, then accepts once it does', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3'], seed: 3, traceLines: 0 });
    c.stabilize();
    c.campaign('n1');
    c.stabilize();
    c.addEmptyMember('n4');
    c.crash('n4'); // it will not catch up while down
    expect(c.proposeConfChange('n1', { type: 'addLearner', nodeId: nodeId('n4') }).accepted).toBe(true);
    c.stabilize();
    expect(c.node('n1').raw!.status().confState.learners).toEqual(['n4']);
    expect(c.proposeConfChange('n1', { type: 'addNode', nodeId: nodeId('n4') })).toEqual({ accepted: false, reason: 'learner-not-caught-up' });
    c.restart('n4');
    for (let i = 0; i < 20 && (c.node('n1').raw!.status().progress?.get(nodeId('n4'))?.match ?? 0) < c.node('n1').commit; i++) {
      c.advanceTime();
      c.stabilize();
    }
    expect(c.proposeConfChange('n1', { type: 'addNode', nodeId: nodeId('n4') }).accepted).toBe(true);
    c.stabilize();
    expect(c.node('n1').raw!.status().confState.voters).toContain('n4');
  });
});
