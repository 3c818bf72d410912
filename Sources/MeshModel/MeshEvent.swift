//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

/// The events of the mesh model: small integers only, stored inline in the event queue.
///
/// Slots (`attempt`, `call`) carry a generation so that an event for a slot that has since been freed and reused
/// is recognised as stale and ignored.
public enum MeshEvent: Sendable, Equatable {
    /// The next arrival of open-loop client `client`, or the next request of user `user` of a closed-loop client.
    case arrival(client: Int32, user: Int32)
    /// A request (attempt) reaches its replica after crossing the network.
    case deliver(attempt: Int32, generation: UInt32)
    /// A replica finishes the local work of an attempt.
    case serviceDone(attempt: Int32, generation: UInt32)
    /// A response reaches the caller after crossing the network (or a refused connection is noticed).
    case response(attempt: Int32, generation: UInt32)
    /// The per-attempt timeout of a call fires.
    case timeout(call: Int32, generation: UInt32, attemptNumber: Int32)
    /// A call's hedging delay after attempt `attemptNumber` has passed.
    case hedge(call: Int32, generation: UInt32, attemptNumber: Int32)
    /// A call's retry, after its backoff.
    case retry(call: Int32, generation: UInt32)
    /// The periodic outlier-detection sweep of call edge `edge`.
    case outlierSweep(edge: Int32)
    /// A health check of replica `host` from call edge `edge` is due (`checker` 0: Envoy active health check,
    /// 1: HAProxy `check`).
    case healthCheck(edge: Int32, host: Int32, checker: UInt8)
    /// A health check of replica `host` ends with `result` (0 passed, 1 failed, 2 timed out).
    case healthCheckDone(edge: Int32, host: Int32, checker: UInt8, result: UInt8)
    /// A replica's passive-health unavailability on call edge `edge` is over: the edge's view is recomputed.
    case healthRecovery(edge: Int32)
    /// A connection of call edge `edge`'s Envoy breaker pool was freed: pending attempts may go.
    case dispatchPending(edge: Int32)
    /// Fault `index` begins.
    case faultStart(index: Int32)
    /// Fault `index` ends.
    case faultEnd(index: Int32)
    /// Callers of `service` learn that `replica` has appeared (`present`) or gone.
    case discovery(service: Int32, replica: Int32, present: Bool)
}
