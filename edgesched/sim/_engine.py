"""The simulated world: devices that share their compute, links that carry bytes.

Each node holds model instances. A request routed to a node first crosses the node's link (RTT
plus bytes over bandwidth; a shared link splits its bandwidth among the transfers in progress),
then waits for a free instance of its model, then computes. Every computing job progresses at
``1 / slowdown`` where the slowdown comes from the interference model for the node's current mix,
so each start or finish re-rates only the jobs on that node (processor sharing with interference).
Dynamic power follows the mix; energy is integrated per node between events.

Confidence offload (an :class:`~edgesched.sim.offload.OffloadPlan`): when an edge node finishes a
request of an offloading model, the request's answer is one input drawn from the pair's measured
confidence sample; the pair's offload policy decides on its confidence, and an offloaded request
crosses a cloud node's link and runs the cloud model there. Its record keeps the edge node and
start; its finish, energy and correctness are the whole journey's.

Hot path notes: per-node state lives in plain lists indexed by node, and the rates and power of a
mix are computed once per (device, mix) and cached. ``benchmarks/sim_speed.py`` measures it.

This module is plain Python and is also compiled with Cython when the package is installed (see
``setup.py``); :mod:`edgesched.sim.engine` picks the compiled build when it matches this source.
Keep it free of Cython-only syntax so that both builds stay one source.
"""

from __future__ import annotations

import gc
from array import array
from collections import deque
from collections.abc import Callable, Generator, Sequence
from heapq import heappop, heappush
from typing import Any

import numpy as np

from edgesched.core.cluster import Cluster
from edgesched.core.request import Outcome, Request
from edgesched.core.view import ClusterState, ClusterView
from edgesched.errors import PolicyDecisionError
from edgesched.policies.route import RoutePolicy
from edgesched.sim.arrivals import Workload
from edgesched.sim.interference import InterferenceModel
from edgesched.sim.kernel import NORMAL, PRIORITY_STRIDE, URGENT, Kernel
from edgesched.sim.links import SharedLink
from edgesched.sim.offload import OffloadPlan
from edgesched.sim.power import PowerModel

_EWMA = 0.1  # weight of a new latency in the per-node moving average
_CHUNK = 65536  # arrivals converted to Python lists at a time
_BITS = 10  # bits per model in a node's mix code: up to 1023 running instances of one model
_MASK = (1 << _BITS) - 1


class RunRecords:
    """Per-request results as compact columns (one typed array per field).

    ``offloaded`` is 1 where the cloud model answered in the edge model's place; ``correct`` is
    1 or 0 where the answer's correctness is known (offloading models), else -1.
    """

    def __init__(self, n: int) -> None:
        self.node = array("i", bytes(4 * n))
        self.start_s = array("d", bytes(8 * n))
        self.finish_s = array("d", bytes(8 * n))
        self.energy_j = array("d", bytes(8 * n))
        self.offloaded = array("b", bytes(n))
        self.correct = array("b", b"\xff" * n)


class Engine:
    """One simulation run of a workload on a cluster under a routing policy.

    Args:
        cluster: nodes, links and catalog.
        workload: the requests.
        policy: the routing policy.
        interference: slowdown model for co-running instances.
        power: device power model.
        rng: generator handed to the policy.
        progress: called with the number of arrivals handled so far, every chunk.
        slowdowns: ``(time_s, node, factor)``: from ``time_s`` on, ``node`` computes ``factor``
            times slower than its profile (running jobs stretch from that instant).
        offload: confidence offload pairs and their policies (None: no offload); the workload's
            model names must include the pairs' cloud models.
    """

    def __init__(
        self,
        cluster: Cluster,
        workload: Workload,
        policy: RoutePolicy,
        interference: InterferenceModel,
        power: PowerModel,
        rng: np.random.Generator,
        progress: Callable[[int], None] | None = None,
        slowdowns: Sequence[tuple[float, int, float]] = (),
        offload: OffloadPlan | None = None,
    ) -> None:
        self.cluster = cluster
        self.offload = offload
        self.slowdowns = sorted(slowdowns)
        self.workload = workload
        self.policy = policy
        self.interference = interference
        self.power = power
        self.kernel = Kernel()
        self.progress = progress
        names = workload.model_names
        self.model_names = names
        n_nodes, n_models = len(cluster.nodes), len(names)
        self.state = ClusterState(n_nodes, n_models, len(cluster.links))
        # Policies plan with the interference the simulator applies: none means alpha = 0.
        interfering = cluster.interference.kind != "none"
        self.view = ClusterView(
            cluster,
            names,
            workload.model_input_bytes.tolist(),
            self.state,
            self.kernel.clock,
            cluster.interference.alpha_scale if interfering else 0.0,
        )
        self.records = RunRecords(len(workload))
        self._mix_cache: dict[str, dict[int, tuple[list[float], float, float]]] = {}
        self._energy_dyn = [0.0] * n_nodes
        policy.reset(self.view, rng)

    # ----------------------------------------------------------------- mix rates and power
    def _mix(self, device: str, code: int) -> tuple[list[float], float, float]:
        """(rate per model, dynamic power, utilisation sum) for a mix on ``device``.

        A mix is encoded as one integer, ``sum(count[m] << (_BITS * m))``, so that starting or
        finishing a job is one addition and the cache key is cheap to hash.
        """
        cache = self._mix_cache.setdefault(device, {})
        hit = cache.get(code)
        if hit is not None:
            return hit
        names = self.model_names
        mix = [(code >> (_BITS * m)) & _MASK for m in range(len(names))]
        running = {names[m]: c for m, c in enumerate(mix) if c}
        rates = [0.0] * len(mix)
        for m, c in enumerate(mix):
            if c:
                others = dict(running)
                others[names[m]] = c - 1
                rates[m] = 1.0 / self.interference.slowdown(device, names[m], others)
        dyn = self.power.power(device, running) - self.power.idle(device)
        util = sum(
            c * self.cluster.catalog.profile(device, names[m]).utilisation.value
            for m, c in enumerate(mix)
            if c
        )
        cache[code] = hit = (rates, dyn, util)
        return hit

    # ----------------------------------------------------------------------------- the run
    def run(self) -> RunRecords:
        """Simulate every request; return the per-request records.

        The cyclic garbage collector is paused during the run: the loop allocates millions of
        short-lived containers (jobs, events) that reference counting frees, and the collector's
        periodic scans of them cost more than a tenth of the run time.
        """
        enabled = gc.isenabled()
        gc.disable()
        try:
            decide, view = self.policy.decide, self.view
            steps = self.steps()
            try:
                req = next(steps)
                while True:
                    req = steps.send(decide(req, view))
            except StopIteration as done:
                return done.value
        finally:
            if enabled:
                gc.enable()

    def steps(self) -> Generator[Request, int, RunRecords]:
        """The run, one routing decision at a time.

        Yields each arriving request with the world advanced to its arrival; expects the index of
        the node that serves it through ``send``. Returns the records when every request has
        ended. :meth:`run` drives it with the policy's ``decide``; a training environment drives
        it with the agent's actions. The policy still receives ``observe`` (when it overrides it).
        """
        cluster, kernel, wl, policy = self.cluster, self.kernel, self.workload, self.policy
        view, state = self.view, self.state
        rec = self.records
        n_nodes, n_models = len(cluster.nodes), len(self.model_names)
        device = [node.device.name for node in cluster.nodes]
        is_cloud = [node.is_cloud for node in cluster.nodes]
        deployed = view.deployed.tolist()
        node_link = [node.link for node in cluster.nodes]
        work_of = view.solo_latency_s.tolist()
        free = [list(row) for row in deployed]
        waiting: list[list[deque[Request]]] = [
            [deque() for _ in range(n_models)] for _ in range(n_nodes)
        ]
        jobs: list[list[list[Any]]] = [[] for _ in range(n_nodes)]
        code = [0] * n_nodes  # running mix per node, see _mix
        unit = [1 << (_BITS * m) for m in range(n_models)]
        last = [0.0] * n_nodes
        version = [0] * n_nodes
        dynp = [0.0] * n_nodes
        edyn = self._energy_dyn
        mix_of = self._mix
        # One cache per device kind, shared by its nodes: mix code → (rates, power, util).
        node_cache = [self._mix_cache.setdefault(d, {}) for d in device]
        raw = state.raw  # flat buffers behind the view's arrays; (n, m) is at n * n_models + m
        inflight, inflight_model = raw["inflight"], raw["inflight_model"]
        running_model, running_util = raw["running_model"], raw["running_util"]
        ewma, ewma_t = raw["latency_ewma_s"], raw["latency_time_s"]
        rec_node, rec_start, rec_finish, rec_energy = (
            rec.node,
            rec.start_s,
            rec.finish_s,
            rec.energy_j,
        )
        rec_off, rec_ok = rec.offloaded, rec.correct
        # Hot path: events go straight onto the kernel's heap with the kernel's own sequence
        # counter (Kernel.schedule adds only a past-time check that these callers cannot fail).
        heap, seq = kernel.heap, kernel.seq
        push, pop = heappush, heappop
        urgent, normal = URGENT * PRIORITY_STRIDE, NORMAL * PRIORITY_STRIDE
        observe = policy.observe if policy.wants_outcomes else None
        solo_of = view.solo_latency_s.tolist()
        slow = raw["slowdown_ewma"]

        # A job is [work left (s), rate, model, energy counter at start, start time, request].
        # ``eshare[n]`` integrates dynamic power / running jobs on node n, so a job's energy share
        # is the counter's growth while it ran: one addition per event instead of one per job.
        eshare = [0.0] * n_nodes
        inf = float("inf")

        # Finish events, lazily: ``due[n]`` is the job that finishes next on node n, at
        # ``due_at[n]``; the node's live event (the one whose version is ``version[n]``) is due at
        # ``pending_at[n]`` <= ``due_at[n]``. A start that only delays the next finish pushes
        # nothing: the live event fires early and moves itself to ``due_at[n]``. This saves about
        # a third of the heap traffic on busy nodes (benchmarks/sim_speed.py).
        due_at = [0.0] * n_nodes
        pending_at = [inf] * n_nodes
        due: list[list[Any] | None] = [None] * n_nodes

        # Offload: ``tracked[m]`` marks the models of a pair, whose answers ``settle`` records;
        # ``legs`` holds, per offloaded request id, what its edge leg left behind.
        plan = self.offload
        offloading = plan is not None
        pair_of: list[Any] = [None] * n_models
        tracked = [False] * n_models
        legs: dict[int, tuple[Request, int, float, float, int]] = {}
        for pair in plan.pairs if plan is not None else ():
            pair_of[pair.edge_model] = pair
            tracked[pair.edge_model] = tracked[pair.cloud_model] = True
        draw = plan.draws.next if plan is not None else None

        def deliver(t: float, n: int, req: Request) -> None:
            m = req.model
            if free[n][m] <= 0:
                waiting[n][m].append(req)
                return
            # Start the job. Hot path: advancing the running jobs, giving them the new mix's
            # rates and finding the next finish share one pass over the node's jobs.
            free[n][m] -= 1
            code[n] += unit[m]
            running_model[n * n_models + m] += 1
            js = jobs[n]
            dt: float = t - last[n]
            last[n] = t
            if js and dt > 0.0:
                p: float = dynp[n] * dt
                eshare[n] += p / len(js)
                edyn[n] += p
            rates, dynp[n], running_util[n] = node_cache[n].get(code[n]) or mix_of(
                device[n], code[n]
            )
            r: float = rates[m]
            new = [work_of[n][m], r, m, eshare[n], t, req]
            soonest: float = new[0] / r
            first = new
            for j in js:
                left: float = j[0] - dt * j[1]
                j[0] = left
                rj: float = rates[j[2]]
                j[1] = rj
                if left < soonest * rj:
                    soonest, first = left / rj, j
            js.append(new)
            due[n] = first
            at: float = t + max(soonest, 0.0)
            due_at[n] = at
            if at < pending_at[n]:
                pending_at[n] = at
                version[n] += 1
                push(heap, (at, urgent + next(seq), node_done, n, version[n]))

        def node_done(t: float, n: int, ver: int) -> None:
            if ver != version[n]:
                return  # superseded by an earlier event pushed later
            if t < due_at[n]:  # fired early: the next finish was delayed since it was pushed
                at: float = due_at[n]
                pending_at[n] = at
                version[n] += 1
                push(heap, (at, urgent + next(seq), node_done, n, version[n]))
                return
            js = jobs[n]
            dt: float = t - last[n]
            last[n] = t
            p: float = dynp[n] * dt
            es: float = eshare[n] + p / len(js)
            eshare[n] = es
            edyn[n] += p
            j = due[n]
            js.remove(j)
            req = j[5]
            m, rid = j[2], req.id
            energy: float = es - j[3]
            inflight[n] -= 1
            inflight_model[n * n_models + m] -= 1
            if offloading and tracked[m]:
                done = settle(t, n, req, j[4], energy)
            else:
                done = req
                rec_node[rid] = n
                rec_start[rid] = j[4]
                rec_finish[rid] = t
                rec_energy[rid] = energy
            lat: float = t - req.arrival_s
            prev: float = ewma[n]
            ewma[n] = lat if prev != prev else prev + _EWMA * (lat - prev)
            ewma_t[n] = t
            sd: float = (t - j[4]) / solo_of[n][m]
            prev = slow[n]
            slow[n] = sd if prev != prev else prev + _EWMA * (sd - prev)
            q = waiting[n][m]
            if q:  # the freed instance takes the next request waiting for it: same mix
                new = [work_of[n][m], 0.0, m, es, t, q.popleft()]
            else:
                new = None
                code[n] -= unit[m]
                free[n][m] += 1
                running_model[n * n_models + m] -= 1
            if observe is not None and done is not None:
                kernel.now = t
                ok = rec_ok[rid]
                observe(
                    Outcome(
                        rid,
                        done.model,
                        rec_node[rid],
                        done.arrival_s,
                        rec_start[rid],
                        t,
                        rec_energy[rid],
                        is_cloud[n],
                        done.slo_s,
                        None if ok < 0 else ok == 1,
                    )
                )
            rates, dynp[n], running_util[n] = node_cache[n].get(code[n]) or mix_of(
                device[n], code[n]
            )
            # One pass: advance, re-rate, find the next finish. A job that finished at this same
            # instant (a tie) has ~0 work left and becomes the next event, at time t.
            soonest: float = inf
            first = None
            for j in js:
                left: float = j[0] - dt * j[1]
                j[0] = left
                r: float = rates[j[2]]
                j[1] = r
                if left < soonest * r:
                    soonest, first = left / r, j
            if new is not None:
                r = rates[m]
                new[1] = r
                js.append(new)
                if new[0] < soonest * r:
                    soonest, first = new[0] / r, new
            if first is None:
                pending_at[n] = inf
            else:
                due[n] = first
                at = t + max(soonest, 0.0)
                due_at[n] = pending_at[n] = at
                version[n] += 1
                push(heap, (at, urgent + next(seq), node_done, n, version[n]))

        def settle(t: float, n: int, req: Request, start: float, energy: float) -> Request | None:
            """Record node ``n``'s answer to ``req``, of an offload pair's model.

            An edge answer of the edge model is one input drawn from the pair's measured sample;
            if the pair's policy offloads it, the request leaves for the least loaded cloud node
            serving the cloud model (its record is completed when that answers). Returns the
            request as it arrived once it is answered, None while it goes on.
            """
            rid = req.id
            leg = legs.pop(rid, None)
            if leg is not None:  # the cloud model answered an offloaded request
                first, edge_n, edge_start, edge_energy, ok = leg
                rec_node[rid] = edge_n
                rec_start[rid] = edge_start
                rec_finish[rid] = t
                rec_energy[rid] = edge_energy + energy
                rec_off[rid] = 1
                rec_ok[rid] = ok
                return first
            rec_node[rid] = n
            rec_start[rid] = start
            rec_finish[rid] = t
            rec_energy[rid] = energy
            pair = pair_of[req.model]
            if pair is None:  # the cloud model asked directly: its correctness is not drawn
                return req
            k = int(draw() * len(pair.confidence))
            kernel.now = t
            if is_cloud[n] or not pair.policy.decide(req, pair.confidence[k], view):
                rec_ok[rid] = pair.edge_correct[k]
                return req
            legs[rid] = (req, n, start, energy, pair.cloud_correct[k])
            c = min(pair.cloud_nodes, key=inflight.__getitem__)
            up = Request(rid, pair.cloud_model, t, req.input_bytes, req.slo_s, n)
            push(heap, (t, normal + next(seq), send, c, up))
            return None

        factor = [1.0] * n_nodes  # computation time multiplier per node (slowdowns)

        def slow_down(t: float, n: int, new_factor: float) -> None:
            """From ``t`` on, node ``n`` computes ``new_factor`` times slower than profiled."""
            ratio: float = new_factor / factor[n]
            factor[n] = new_factor
            work_of[n] = [w * ratio for w in work_of[n]]
            js = jobs[n]
            if not js:
                return
            dt: float = t - last[n]
            last[n] = t
            p: float = dynp[n] * dt
            eshare[n] += p / len(js)
            edyn[n] += p
            soonest: float = inf
            first = None
            for j in js:
                left: float = (j[0] - dt * j[1]) * ratio
                j[0] = left
                if left < soonest * j[1]:
                    soonest, first = left / j[1], j
            due[n] = first
            at: float = t + max(soonest, 0.0)
            due_at[n] = pending_at[n] = at
            version[n] += 1
            push(heap, (at, urgent + next(seq), node_done, n, version[n]))

        for at_s, n, new_factor in self.slowdowns:
            push(heap, (at_s, urgent + next(seq), slow_down, n, new_factor))

        # Shared links: bandwidth split among transfers (see SharedLink), one event per link.
        shared = [SharedLink(lk.bandwidth_bytes_per_s) for lk in cluster.links]
        link_version = [0] * len(cluster.links)
        link_active = raw["link_active"]

        def link_reschedule(k: int) -> None:
            link_version[k] += 1
            at = shared[k].next_finish()
            if at is not None:
                push(heap, (at, urgent + next(seq), link_done, k, link_version[k]))

        def link_done(t: float, k: int, ver: int) -> None:
            if ver != link_version[k]:
                return
            rtt = cluster.links[k].rtt_s
            for n, req in shared[k].pop_done(t):
                link_active[k] -= 1
                push(heap, (t + rtt, normal + next(seq), deliver, n, req))
            link_reschedule(k)

        def misrouted(req: Request, n: object) -> PolicyDecisionError:
            return PolicyDecisionError(
                f"policy {policy.name!r} sent request {req.id} of model "
                f"{self.model_names[req.model]!r} to node {n!r}, which does not serve it"
            )

        # Per node: 0 = no link, 1 = a link of its own (fixed delay), 2 = a shared link.
        link_kind = [0 if lk is None else 2 if lk.shared else 1 for lk in node_link]
        link_rtt = [lk.rtt_s if lk else 0.0 for lk in node_link]
        link_bw = [lk.bandwidth_bytes_per_s if lk else 1.0 for lk in node_link]
        link_idx = [lk.index if lk else -1 for lk in node_link]

        def send(t: float, n: int, req: Request) -> None:
            """Send ``req`` to node ``n`` at ``t``: over the node's link, then to its queue.

            The arrival loop below does the same inline (it is the hot path).
            """
            inflight[n] += 1
            inflight_model[n * n_models + req.model] += 1
            kind = link_kind[n]
            if kind == 1:
                at = t + link_rtt[n] + req.input_bytes / link_bw[n]
                push(heap, (at, normal + next(seq), deliver, n, req))
            elif kind == 0:
                deliver(t, n, req)
            else:
                k = link_idx[n]
                shared[k].add(t, req.input_bytes, (n, req))
                link_active[k] += 1
                link_reschedule(k)

        total = len(wl)
        for lo in range(0, total, _CHUNK):
            hi = min(lo + _CHUNK, total)
            times = wl.times[lo:hi].tolist()
            models = wl.models[lo:hi].tolist()
            slos = wl.slo_s[lo:hi].tolist()
            sizes = wl.input_bytes[lo:hi].tolist()
            for i, t in enumerate(times):
                # Kernel.run_until(t), inlined: events due by t run before this arrival.
                # Callbacks get their time as an argument, so kernel.now is set for policies only.
                while heap and heap[0][0] <= t:
                    at, _, callback, a, b = pop(heap)
                    callback(at, a, b)
                kernel.now = t
                m = models[i]
                req = Request(lo + i, m, t, sizes[i], slos[i])
                n = yield req
                try:
                    if not deployed[n][m] or n < 0:
                        raise misrouted(req, n)
                except (IndexError, TypeError):
                    raise misrouted(req, n) from None
                # send(t, n, req), inlined: this is the hot path.
                inflight[n] += 1
                inflight_model[n * n_models + m] += 1
                kind = link_kind[n]
                if kind == 1:
                    at = t + link_rtt[n] + sizes[i] / link_bw[n]
                    push(heap, (at, normal + next(seq), deliver, n, req))
                elif kind == 0:
                    deliver(t, n, req)
                else:
                    k = link_idx[n]
                    shared[k].add(t, req.input_bytes, (n, req))
                    link_active[k] += 1
                    link_reschedule(k)
            if self.progress is not None:
                self.progress(hi)
        kernel.run()  # drain: every job and transfer ends, energy is integrated up to it
        return rec

    @property
    def dynamic_energy_j(self) -> list[float]:
        """Dynamic energy integrated per node so far, in joules."""
        return list(self._energy_dyn)
