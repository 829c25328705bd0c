// SPDX-License-Identifier: GPL-3.0-or-later
//
// Stillflow batch as a Flamenco 3 job type: one task per shard, each running
//   blender --command stillflow batch IN OUT --shard K/N ...      (runner "blender", the default)
//   stillflow batch IN OUT --shard K/N ...                         (runner "stillflow": the command line)
// then one task that reports the merged journals (`stillflow batch --status OUT`) and fails when any item
// failed or is still pending. Every shard writes only its own journal and plan in OUT (atomic renames, no
// locks across machines), so the workers need nothing but a shared OUT folder.
//
// Install: copy this file into the `scripts` folder next to the flamenco-manager executable (create it), and
// restart the Manager. Submit with Flamenco's Blender add-on (the job type appears as "Stillflow Batch") or
// through the Manager's API. Workers need Blender with the Stillflow extension enabled (runner "blender"),
// or the `stillflow` command on their PATH (runner "stillflow").

const JOB_TYPE = {
    label: "Stillflow Batch",
    description: "Animate a folder of photos (or a Stillflow job list) into seamless loops, one task per shard",
    settings: [
        { key: "input", type: "string", subtype: "dir_path", required: true,
          description: "Folder of photos, or a job list (.csv or .jsonl), on storage every worker sees" },
        { key: "output", type: "string", subtype: "dir_path", required: true,
          description: "OUT_DIR on shared storage: one folder per photo, the shards' journals, logs/" },
        { key: "photo_count", type: "int32", default: 0,
          description: "How many photos IN holds (with shard_size: the number of shards); 0 to give shards" },
        { key: "shard_size", type: "int32", default: 100,
          description: "Photos per task, on average (shards split by a hash of the names)" },
        { key: "shards", type: "int32", default: 0,
          description: "Number of shards, when photo_count is 0" },
        { key: "frames", type: "int32", default: 60, description: "Loop length in frames" },
        { key: "format", type: "string", default: "mp4", choices: ["mp4", "png", "exr", "gif", "webp"],
          description: "What each photo becomes" },
        { key: "extra_args", type: "string", default: "",
          description: "More `stillflow batch` options, separated by spaces (for example: --speed 1.5 --max-size 1920)" },
        { key: "runner", type: "string", default: "blender", choices: ["blender", "stillflow"],
          description: "Run through Blender (blender --command stillflow) or the stillflow command" },
        { key: "blender_cmd", type: "string", default: "{blender}", visible: false },
        { key: "stillflow_cmd", type: "string", default: "stillflow", visible: false },
    ],
};

function shardCount(settings) {
    const count = settings.photo_count || 0;
    const size = settings.shard_size || 0;
    if (count > 0) {
        if (size < 1) {
            throw "shard_size must be at least 1 when photo_count is given";
        }
        return Math.max(1, Math.ceil(count / size));
    }
    if ((settings.shards || 0) < 1) {
        throw "give photo_count (and shard_size) or shards";
    }
    return settings.shards;
}

function stillflowCommand(settings, args) {
    if (settings.runner === "stillflow") {
        return author.Command("exec", { exe: settings.stillflow_cmd, args: args });
    }
    // `--command` consumes every argument after it and runs Blender in the background.
    return author.Command("exec", { exe: settings.blender_cmd, args: ["--command", "stillflow"].concat(args) });
}

function compileJob(job) {
    const settings = job.settings;
    const n = shardCount(settings);
    const extra = (settings.extra_args || "").split(" ").filter(function (a) { return a.length > 0; });
    const logs = settings.output.replace(/[\/\\]+$/, "") + "/logs";
    const taskType = settings.runner === "stillflow" ? "misc" : "blender";
    const shardTasks = [];
    for (let k = 1; k <= n; k++) {
        const task = author.Task(`stillflow-shard-${k}-of-${n}`, taskType);
        const args = ["batch", settings.input, settings.output, "--shard", `${k}/${n}`,
                      "--frames", String(settings.frames), "--format", settings.format,
                      "--log-dir", logs, "--quiet"].concat(extra);
        task.addCommand(stillflowCommand(settings, args));
        job.addTask(task);
        shardTasks.push(task);
    }
    const report = author.Task("stillflow-status", taskType);
    report.addCommand(stillflowCommand(settings, ["batch", "--status", settings.output]));
    for (const t of shardTasks) {
        report.addDependency(t);
    }
    job.addTask(report);
}
