import Foundation
import Testing
import Yams

/// Sweeps split into shards run as separate processes, and the Kubernetes manifests that run them on a cluster.
@Suite("Scale-out: shards as processes, and the Kubernetes manifests")
struct ScaleOutTests {
    static let deploy = CLITests.root + "/deploy"

    /// A small sweep: 2 × 3 variants × 2 seeds, a few seconds of simulated time.
    static let scenario = """
        name: scale-out
        seed: 5
        seeds: 2
        duration: 3s
        window: 1s
        services:
          api:
            replicas: 3
            workers: 2
            service_time: "exponential:mean=5ms"
        clients:
          users:
            target: api
            rate: 100
            timeout: 50ms
        faults:
          - {at: 1s, for: 1s, kind: slowdown, service: api, replica: 1, factor: 10}
        sweep:
          rate: {path: clients.users.rate, values: [100, 300]}
          balancer: {path: clients.users.balancer, values: [round_robin, least_request, p2c_peak_ewma]}
        """

    /// A YAML file's documents as plain values.
    static func load(_ path: String) throws -> [String: Any] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try #require(try Yams.load(yaml: text) as? [String: Any], "\(path) is not a mapping")
    }

    /// The value at a path of keys and list indices.
    static func value(_ root: Any, _ path: Any...) -> Any? {
        var node: Any? = root
        for step in path {
            if let key = step as? String { node = (node as? [String: Any])?[key] }
            if let index = step as? Int {
                guard let list = node as? [Any], list.indices.contains(index) else { return nil }
                node = list[index]
            }
        }
        return node
    }

    /// The container of a Job: its environment (plain values; downward-API ones as `fieldRef:PATH`), arguments,
    /// mounts and the pod's volumes.
    struct Container {
        var image: String
        var environment: [String: String]
        var arguments: [String]
        var mounts: [String: String]
        var volumes: [String: [String: Any]]

        init(job: [String: Any]) throws {
            let pod = try #require(value(job, "spec", "template", "spec") as? [String: Any])
            let container = try #require(value(pod, "containers", 0) as? [String: Any])
            image = try #require(container["image"] as? String)
            environment = [:]
            for item in container["env"] as? [[String: Any]] ?? [] {
                let name = try #require(item["name"] as? String)
                if let plain = item["value"] as? String {
                    environment[name] = plain
                } else {
                    let field = try #require(value(item, "valueFrom", "fieldRef", "fieldPath") as? String)
                    environment[name] = "fieldRef:" + field
                }
            }
            arguments = try #require(container["args"] as? [Any]).map { "\($0)" }
            mounts = [:]
            for mount in container["volumeMounts"] as? [[String: Any]] ?? [] {
                mounts[try #require(mount["name"] as? String)] = try #require(mount["mountPath"] as? String)
            }
            volumes = [:]
            for volume in pod["volumes"] as? [[String: Any]] ?? [] {
                volumes[try #require(volume["name"] as? String)] = volume
            }
        }

        /// The arguments with `$(NAME)` replaced as the kubelet does, from `values` then the plain environment.
        func expanded(_ values: [String: String]) -> [String] {
            arguments.map { argument in
                var text = argument
                for (name, value) in environment.merging(values, uniquingKeysWith: { $1 }) {
                    text = text.replacingOccurrences(of: "$(\(name))", with: value)
                }
                return text
            }
        }
    }

    @Test("the Indexed Job, the merge Job, the volume and the image build file fit together")
    func manifests() throws {
        let sweep = try Self.load(Self.deploy + "/kubernetes/sweep-job.yaml")
        let merge = try Self.load(Self.deploy + "/kubernetes/merge-job.yaml")
        let claim = try Self.load(Self.deploy + "/kubernetes/results-pvc.yaml")
        let kustomization = try Self.load(Self.deploy + "/kubernetes/kustomization.yaml")

        for job in [sweep, merge] {
            #expect(job["apiVersion"] as? String == "batch/v1")
            #expect(job["kind"] as? String == "Job")
            #expect(Self.value(job, "spec", "template", "spec", "restartPolicy") as? String == "Never")
        }
        // Indexed, one pod per shard, the shard count in the arguments the same as the completions.
        #expect(Self.value(sweep, "spec", "completionMode") as? String == "Indexed")
        let completions = try #require(Self.value(sweep, "spec", "completions") as? Int)
        let parallelism = try #require(Self.value(sweep, "spec", "parallelism") as? Int)
        #expect(completions >= 2 && parallelism <= completions)
        let worker = try Container(job: sweep)
        #expect(worker.environment["SHARDS"] == String(completions))
        #expect(
            worker.environment["SHARD_INDEX"]
                == "fieldRef:metadata.annotations['batch.kubernetes.io/job-completion-index']"
        )
        let shardFlag = try #require(worker.arguments.firstIndex(of: "--shard"))
        #expect(worker.arguments[shardFlag + 1] == "$(SHARD_INDEX)/$(SHARDS)")
        #expect(worker.arguments.first == "run")
        // Every variable an argument uses is defined in its container.
        let combiner = try Container(job: merge)
        for container in [worker, combiner] {
            for argument in container.arguments {
                var rest = Substring(argument)
                while let start = rest.range(of: "$(") {
                    let end = try #require(rest[start.upperBound...].firstIndex(of: ")"))
                    let name = String(rest[start.upperBound..<end])
                    #expect(container.environment[name] != nil, "$(\(name)) in '\(argument)' is not defined")
                    rest = rest[end...]
                }
            }
        }
        // Mounts name volumes that exist; the results volume is the claim, shared for writing by many pods.
        let claimName = try #require(Self.value(claim, "metadata", "name") as? String)
        #expect((Self.value(claim, "spec", "accessModes") as? [String]) == ["ReadWriteMany"])
        for container in [worker, combiner] {
            #expect(container.image == worker.image)
            for name in container.mounts.keys {
                #expect(container.volumes[name] != nil, "mount \(name) has no volume")
            }
            #expect(
                Self.value(container.volumes["results"] as Any, "persistentVolumeClaim", "claimName") as? String
                    == claimName
            )
            #expect(container.mounts["results"] == "/results")
        }
        #expect(Self.value(worker.volumes["scenario"] as Any, "configMap", "name") as? String == "meshsim-scenario")
        // The merge reads the folder the shards write into.
        let out = try #require(worker.arguments.firstIndex(of: "--out")).advanced(by: 1)
        let shardFolder = worker.arguments[out]
        #expect(shardFolder.hasSuffix("/$(SHARD_INDEX)"))
        #expect(combiner.arguments.first == "merge")
        #expect(combiner.arguments.dropFirst().first == String(shardFolder.dropLast("/$(SHARD_INDEX)".count)))
        #expect(combiner.environment["RUN_ID"] == worker.environment["RUN_ID"])
        // The load Job: the same Indexed shape, all shards at once, one start time, no retries.
        let load = try Self.load(Self.deploy + "/kubernetes/load-job.yaml")
        #expect(Self.value(load, "spec", "completionMode") as? String == "Indexed")
        let loadCompletions = try #require(Self.value(load, "spec", "completions") as? Int)
        #expect(Self.value(load, "spec", "parallelism") as? Int == loadCompletions)
        #expect(Self.value(load, "spec", "backoffLimitPerIndex") as? Int == 0)
        #expect(Self.value(load, "spec", "template", "spec", "restartPolicy") as? String == "Never")
        let sender = try Container(job: load)
        #expect(sender.arguments.first == "load")
        #expect(sender.environment["SHARDS"] == String(loadCompletions))
        #expect(sender.environment["SHARD_INDEX"] == worker.environment["SHARD_INDEX"])
        let loadShard = try #require(sender.arguments.firstIndex(of: "--shard"))
        #expect(sender.arguments[loadShard + 1] == "$(SHARD_INDEX)/$(SHARDS)")
        let startAt = try #require(sender.arguments.firstIndex(of: "--start-at"))
        #expect(sender.arguments[startAt + 1] == "$(START_AT)")
        #expect(sender.environment["START_AT"] == "REPLACE_WITH_UNIX_SECONDS")
        let loadOut = try #require(sender.arguments.firstIndex(of: "--out"))
        #expect(sender.arguments[loadOut + 1] == "/results/$(RUN_ID)/shards/$(SHARD_INDEX)")
        #expect(
            Self.value(sender.volumes["results"] as Any, "persistentVolumeClaim", "claimName") as? String == claimName
        )
        #expect(sender.image == worker.image)
        for argument in sender.arguments {
            var rest = Substring(argument)
            while let start = rest.range(of: "$(") {
                let end = try #require(rest[start.upperBound...].firstIndex(of: ")"))
                #expect(sender.environment[String(rest[start.upperBound..<end])] != nil, "'\(argument)'")
                rest = rest[end...]
            }
        }
        // The kustomization lists files that exist.
        for resource in try #require(kustomization["resources"] as? [String]) {
            #expect(FileManager.default.fileExists(atPath: Self.deploy + "/kubernetes/" + resource), "\(resource)")
        }
        // The image build file builds the meshsim product and ships the scenarios beside the binary's folder.
        let build = try String(contentsOfFile: Self.deploy + "/Containerfile", encoding: .utf8)
        #expect(build.contains("--product meshsim"))
        #expect(build.contains("COPY scenarios /opt/meshsim/scenarios"))
        #expect(build.contains("/opt/meshsim/bin/meshsim"))
        #expect(build.contains("ENTRYPOINT [\"meshsim\"]"))
        #expect(build.contains("libgsl"))
    }

    @Test("the Indexed Job's shards run as separate processes and merge byte-identical to one run")
    func shardsAsProcesses() throws {
        let root = CLITests.temporaryDirectory("scale-out")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/scenario", withIntermediateDirectories: true)
        try Self.scenario.write(toFile: root + "/scenario/scenario.yaml", atomically: true, encoding: .utf8)
        let sweep = try Container(job: try Self.load(Self.deploy + "/kubernetes/sweep-job.yaml"))
        let merge = try Container(job: try Self.load(Self.deploy + "/kubernetes/merge-job.yaml"))
        let count = try #require(Int(sweep.environment["SHARDS"] ?? ""))
        /// The pod's paths, moved under `root`.
        func local(_ arguments: [String]) -> [String] {
            arguments.map { $0.replacingOccurrences(of: "/scenario/", with: root + "/scenario/") }
                .map { $0.hasPrefix("/results/") ? root + $0 : $0 }
        }

        // Every shard at once, each its own process, as the Job's pods.
        var processes: [Process] = []
        for index in 0..<count {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CLITests.binary)
            process.arguments = local(sweep.expanded(["SHARD_INDEX": String(index)]))
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            processes.append(process)
        }
        for process in processes {
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(process.arguments ?? [])")
        }
        let runID = try #require(sweep.environment["RUN_ID"])
        for index in 0..<count {
            #expect(FileManager.default.fileExists(atPath: root + "/results/\(runID)/shards/\(index)/shard.json"))
        }
        let merged = try CLITests.meshsim(local(merge.expanded([:])))
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(merged.stdout.contains("\(count) shard(s), 12 replication(s) merged"), "\(merged.stdout)")

        let whole = try CLITests.meshsim(["run", root + "/scenario/scenario.yaml", "--out", root + "/whole", "--quiet"])
        #expect(whole.status == 0, "\(whole.stderr)")
        for name in ["summary.csv", "timeseries.csv", "comparison.csv", "sweep.csv"] {
            let one = try String(contentsOfFile: root + "/whole/" + name, encoding: .utf8)
            let split = try String(contentsOfFile: root + "/results/\(runID)/merged/" + name, encoding: .utf8)
            #expect(one == split, "\(name) differs")
        }

        // A shard lost: the merge says which, and writes nothing new.
        try FileManager.default.removeItem(atPath: root + "/results/\(runID)/shards/1")
        let incomplete = try CLITests.meshsim(["merge", root + "/results/\(runID)/shards", "--out", root + "/again"])
        #expect(incomplete.status == 65)
        #expect(incomplete.stderr.contains("1 of \(count) shards missing (1)"), "\(incomplete.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root + "/again/summary.csv"))
    }

    @Test(
        "bad --shard values and merge calls are usage errors (64) or unreadable input (65)",
        arguments: [
            (["run", "scenarios/mm1.yaml", "--shard", "4/4"], 64, "--shard 4/4: expected I/N"),
            (["run", "scenarios/mm1.yaml", "--shard", "x"], 64, "expected I/N"),
            (["merge", "--out", "OUT"], 64, "at least one shard folder"),
            (["merge", "/nonexistent-meshsim-shards", "--out", "OUT"], 65, "no such folder"),
            (["merge", "scenarios", "--out", "OUT"], 65, "no shard.json"),
        ]
    )
    func usage(arguments: [String], status: Int32, message: String) throws {
        let out = NSTemporaryDirectory() + "meshsim-merge-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let outcome = try CLITests.meshsim(arguments.map { $0 == "OUT" ? out : $0 })
        #expect(outcome.status == status, "\(arguments): \(outcome.stderr)")
        #expect(outcome.stderr.contains(message), "\(arguments): \(outcome.stderr)")
    }
}
