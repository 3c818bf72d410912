import Foundation
import MeshModel
import Reports
import Scenario
import SharedModel
import SimCore
import Spec
import Testing

/// Inputs a hostile or careless user can write: each ends in a located error or a result, in bounded memory and
/// time (issue 8).
@Suite("Hostile scenario input")
struct HostileInputTests {
    /// Parses `yaml`, expecting it to be refused; returns the errors.
    func refused(_ yaml: String, file: String = "hostile.yaml") -> [ScenarioError] {
        do {
            _ = try Scenario.parse(yaml, file: file)
            Issue.record("accepted: \(yaml.prefix(200))")
            return []
        } catch let failure as ScenarioValidationFailure {
            for error in failure.errors { #expect(error.file == file) }
            return failure.errors
        } catch {
            Issue.record("unexpected error \(error)")
            return []
        }
    }

    /// A small valid scenario to build on.
    static let base = """
        duration: 2s
        services:
          api: {service_time: "constant:1ms"}
        clients:
          users: {target: api, rate: 100}

        """

    @Test("a billion laughs is refused at the alias that passes the node budget, without expanding it")
    func billionLaughs() {
        var lines = [#"a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]"#]
        var previous = "a"
        for name in ["b", "c", "d", "e", "f", "g", "h"] {
            lines.append(
                "\(name): &\(name) [" + Array(repeating: "*" + previous, count: 9).joined(separator: ",") + "]"
            )
            previous = name
        }
        let text = lines.joined(separator: "\n") + "\n"
        #expect(text.utf8.count == 307)
        let errors = refused(text)
        #expect(errors.count == 1)
        #expect(errors.first?.code == .tooLarge)
        #expect(errors.first?.line == 6)
        #expect(errors.first?.message.contains("billion laughs") == true)
    }

    @Test("an alias counts every value it stands for: a document at the budget passes, one value more does not")
    func aliasAccounting() {
        // Root mapping, key 'a', a list of three (4), key 'b', its list, and k aliases of 4 values each.
        func document(aliases k: Int) -> String {
            "a: &a [1, 2, 3]\nb: [" + Array(repeating: "*a", count: k).joined(separator: ", ") + "]\n"
        }
        let fits = (YAMLLimits.maxNodes - 8) / 4
        #expect(8 + 4 * fits == YAMLLimits.maxNodes)
        // At the budget the YAML is read, and only the scenario's own checks complain (no 'too-large').
        let atBudget = refused(document(aliases: fits))
        #expect(!atBudget.isEmpty && !atBudget.contains { $0.code == .tooLarge })
        let over = refused(document(aliases: fits + 1))
        #expect(over.count == 1 && over.first?.code == .tooLarge)
    }

    @Test("anchors and aliases within the budget are expanded as YAML says")
    func aliasesWork() throws {
        let yaml = """
            duration: 2s
            services:
              api: {service_time: "constant:1ms", replicas: 2}
              web:
                service_time: "constant:1ms"
                calls:
                  - &call {service: api, timeout: 50ms, retries: 2}
              batch:
                service_time: "constant:1ms"
                calls:
                  - *call
            clients:
              users: {target: web, rate: 100}
            """
        let scenario = try Scenario.parse(yaml, file: "aliases.yaml")
        let services = scenario.variants[0].spec.services
        #expect(services.count == 3)
        #expect(services[1].calls.count == 1 && services[2].calls.count == 1)
    }

    @Test("an undefined alias, duplicate keys, foreign tags and a second document are all located")
    func yamlProblems() {
        let undefined = refused(Self.base + "seed: *nothing\n")
        #expect(undefined.first?.line == 6)
        #expect(undefined.first?.message.contains("'*nothing'") == true)
        let problems = refused("duration: 2s\nduration: 3s\nseed: !custom 5\n---\nx: 1\n")
        #expect(problems.map(\.line) == [2, 3, 4])
        #expect(problems[0].code == .duplicate)
        #expect(problems[1].message.contains("'!custom'"))
        #expect(problems[2].message.contains("second document"))
    }

    @Test("nesting deeper than the limit is refused before any deep recursion")
    func deepNesting() {
        for depth in [70, 5_000, 200_000] {
            let text = "a: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
            let errors = refused(text)
            #expect(errors.count == 1)
            #expect(errors.first?.line == 1)
        }
    }

    @Test("a document of too many values is refused")
    func tooManyValues() {
        let text = "a: [" + Array(repeating: "1", count: 250_000).joined(separator: ",") + "]\n"
        let errors = refused(text)
        #expect(errors.first?.code == .tooLarge)
    }

    @Test("files that are not UTF-8 text, devices, FIFOs and folders are refused with a reason")
    func unreadableFiles() throws {
        let folder = NSTemporaryDirectory() + "meshsim-hostile-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let latin1 = folder + "/latin1.yaml"
        var bytes = Array("duration: 2s\nname: caf".utf8)
        bytes.append(0xE9)  // é in Latin-1
        bytes += Array("\n".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: latin1))
        let fifo = folder + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let cases: [(path: String, words: String, line: Int?)] = [
            (latin1, "not UTF-8", 2), ("/dev/null", "device", nil), ("/dev/zero", "device", nil),
            (fifo, "FIFO", nil), (folder, "folder", nil), (folder + "/missing.yaml", "no such file", nil),
        ]
        for item in cases {
            do {
                _ = try Scenario.load(path: item.path)
                Issue.record("\(item.path) was accepted")
            } catch let failure as ScenarioValidationFailure {
                let error = try #require(failure.errors.first)
                #expect(error.code == .unreadable)
                #expect(error.message.contains(item.words), "\(error)")
                #expect(error.line == item.line)
                #expect(error.file == item.path)
            }
        }
    }

    /// The stepped computation that ``PauseSchedule/finishTime(start:work:)`` replaced: one iteration per
    /// pause spanned.
    static func steppedFinish(start: Int64, work: Int64, origin: Int64, every: Int64, length: Int64, until: Int64)
        -> Int64
    {
        var t = start
        var remaining = work
        while true {
            if t >= until { return t + remaining }
            let k = t >= origin ? (t - origin) / every : -1
            let pauseStart = k >= 0 ? origin + k * every : origin
            if k >= 0 && t < pauseStart + length {
                t = pauseStart + length
                continue
            }
            let nextPause = k >= 0 ? pauseStart + every : origin
            if nextPause >= until || t + remaining <= nextPause { return t + remaining }
            remaining -= nextPause - t
            t = nextPause
        }
    }

    @Test("a paused replica's finish time is computed, and equals stepping pause by pause")
    func pauseArithmetic() {
        var state: UInt64 = 8
        func draw(_ n: Int64) -> Int64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            return Int64(StreamSeed.splitMix64(state) % UInt64(n))
        }
        for _ in 0..<20_000 {
            let every = 1 + draw(1_000)
            let length = draw(every)
            let origin = draw(5_000)
            let until = draw(4) == 0 ? Int64.max : origin + draw(20_000)
            let start = draw(30_000)
            let work = draw(draw(2) == 0 ? 50 : 20_000)
            let expected = Self.steppedFinish(
                start: start,
                work: work,
                origin: origin,
                every: every,
                length: length,
                until: until
            )
            let computed = PauseSchedule(origin: origin, every: every, length: length, until: until)
                .finishTime(start: start, work: work)
            #expect(computed == expected, "start \(start) work \(work) pauses \(origin)/\(every)/\(length) to \(until)")
        }
        // Work that can never finish saturates at the distant future instead of overflowing.
        let never = PauseSchedule(origin: 0, every: 1_000_000, length: 999_999)
            .finishTime(start: 0, work: SimDuration.horizon.nanoseconds)
        #expect(never == SimInstant.distantFuture.nanoseconds)
    }

    @Test("a pause of 999,999 ns every 1 ms over 10 s requests costs a few events per request, not one per pause")
    func pauseStorm() throws {
        let yaml = """
            duration: 30s
            drain: 2h
            services:
              api: {service_time: "constant:10s", workers: 4}
            clients:
              users: {target: api, rate: 1, arrival: constant}
            faults:
              - {at: 0s, kind: pause, service: api, every: 1ms, length: 999999ns}
            """
        let spec = try Scenario.parse(yaml, file: "pause.yaml").variants[0].spec
        var simulation = Simulation(spec: spec, seed: 1)
        let result = simulation.run()
        // 30 requests, each 10 s of work at 1 ns per ms: ten million pauses each, a few events each.
        #expect(result.events < 1_000, "\(result.events) events")
    }

    @Test("a heavy-tailed network delay with health checks runs without an arithmetic trap")
    func heavyTailedDelays() throws {
        let yaml = """
            duration: 5s
            drain: 1h
            network: {default: {delay: "pareto:shape=0.01,scale=1h"}}
            services:
              api: {service_time: "pareto:shape=0.01,scale=1h", replicas: 2}
              web:
                service_time: "constant:1ms"
                calls:
                  - {service: api, timeout: 24h, retries: 3,
                     health_check: {interval: 1s, timeout: 24h, unhealthy_threshold: 2, healthy_threshold: 1}}
            clients:
              users: {target: web, rate: 50}
            faults:
              - {at: 1s, kind: pause, service: api, every: 1s, length: 999ms}
              - {at: 1s, kind: slowdown, service: api, factor: 1000000}
            """
        let spec = try Scenario.parse(yaml, file: "pareto.yaml").variants[0].spec
        var simulation = Simulation(spec: spec, seed: 3)
        simulation.eventLimit = 200_000
        let result = simulation.run()
        #expect(result.events > 0)
        #expect(result.endTime.nanoseconds <= spec.duration.nanoseconds + spec.drain.nanoseconds)
    }

    @Test("draws beyond the horizon are clamped to it")
    func horizon() {
        #expect(clampToNanoseconds(1e300) == SimDuration.horizon.nanoseconds)
        #expect(clampToNanoseconds(.infinity) == SimDuration.horizon.nanoseconds)
        #expect(clampToNanoseconds(-.infinity) == -SimDuration.horizon.nanoseconds)
        #expect(clampToNanoseconds(.nan) == 0)
        #expect(SimDuration.horizon > SimDuration.year + SimDuration.year)
    }

    @Test("an unbounded queue that runs away stops at the memory budget, naming the service and the time")
    func runawayQueue() throws {
        let yaml = """
            duration: 60s
            services:
              api: {service_time: "constant:1ms", workers: 1}
            clients:
              users: {target: api, rate: 100000000}
            """
        let spec = try Scenario.parse(yaml, file: "flood.yaml").variants[0].spec
        var simulation = Simulation(spec: spec, seed: 1)
        simulation.memoryBudget = 64 << 20
        let result = simulation.run()
        let overrun = try #require(result.memoryOverrun)
        #expect(overrun.service == "api")
        #expect(overrun.unboundedQueue)
        #expect(overrun.queued > 100_000)
        #expect(overrun.bytes > overrun.budget && overrun.bytes < 4 * overrun.budget)
        #expect(overrun.at < SimInstant(nanoseconds: 1_000_000_000))
        // A bounded queue keeps the same overload within the budget.
        var bounded = spec
        bounded.services[0].queueCapacity = 1_000
        bounded.duration = .milliseconds(10)
        var second = Simulation(spec: bounded, seed: 1)
        second.memoryBudget = 64 << 20
        #expect(second.run().memoryOverrun == nil)
    }

    @Test("what a scenario would need up front is refused at its key when absurd")
    func upFrontLimits() {
        let zones = (0...MeshSpec.maxZones).map { "z\($0)" }.joined(separator: ", ")
        #expect(refused(Self.base + "zones: [\(zones)]\n").first?.keyPath == "zones")
        let window = refused(
            Self.base.replacingOccurrences(of: "duration: 2s", with: "duration: 8760h") + "window: 1ms\n"
        )
        #expect(window.first?.keyPath == "window")
        let drain = refused(Self.base + "drain: 8760h\n")
        #expect(drain.first?.keyPath == "drain", "\(drain)")
        let longName = refused(Self.base + "name: " + String(repeating: "n", count: 1_000_000) + "\nseeds: 1000\n")
        #expect(longName.first?.keyPath == "name")
        #expect(longName.first?.code == .tooLarge)
        let rows = refused(
            Self.base.replacingOccurrences(of: "duration: 2s", with: "duration: 8760h")
                + "window: 1h\nseeds: 10000\nvariants:\n"
                + (0..<200).map { "  - {name: v\($0), set: {drain: 1s}}" }.joined(separator: "\n") + "\n"
        )
        #expect(rows.contains { $0.keyPath == "seeds" && $0.code == .tooLarge }, "\(rows)")
        let breaker = refused(
            """
            duration: 2s
            services:
              api: {service_time: "constant:1ms"}
              web:
                service_time: "constant:1ms"
                calls:
                  - service: api
                    circuit_breaker: {kind: resilience4j, sliding_window_type: time_based, sliding_window_size: 100000000}
            clients:
              users: {target: web, rate: 100}
            """
        )
        #expect(breaker.first?.keyPath.hasSuffix("sliding_window_size") == true, "\(breaker)")
    }

    @Test("a thousand zones with two in use need little memory and give the same results as pairs declared")
    func manyZones() throws {
        let zones = (0..<MeshSpec.maxZones).map { "z\($0)" }.joined(separator: ", ")
        let yaml = """
            duration: 5s
            zones: [\(zones)]
            network: {default: {delay: "exponential:mean=1ms"}}
            services:
              api: {service_time: "constant:1ms", replicas: 4, zones: [z0, z999]}
            clients:
              users: {target: api, rate: 200, zone: z500}
            """
        let spec = try Scenario.parse(yaml, file: "zones.yaml").variants[0].spec
        #expect(spec.links.declared.isEmpty)
        var simulation = Simulation(spec: spec, seed: 1)
        let result = simulation.run()
        #expect(result.summary.requests > 500)
        // Declaring every pair in use with the default's delay changes nothing: streams are keyed by zone names.
        var declared = spec
        for (a, b) in [(500, 0), (0, 500), (500, 999), (999, 500)] { declared.links[a, b] = spec.links.fallback }
        var again = Simulation(spec: declared, seed: 1)
        #expect(again.run().summary == result.summary)
    }
}
