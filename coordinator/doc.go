// Package coordinator runs a scrape across a cluster: it starts the run's
// queue (an embedded NATS JetStream server, or an existing NATS), launches a
// worker on every machinefile host, feeds URL tasks through its frontier,
// writes every result to the output exactly once, and stops every worker it
// started.
//
// # The way of one URL
//
//  1. config.go: Config, its defaults and what New refuses.
//  2. coordinator.go: Run, in order: the state directory (state.go), the
//     journal read back on a resume (journal.go), the output, the input, the
//     workers' launch (fleet.go) beside the queue's start (queue.go,
//     natsserver.go, cert.go), the run's streams (setUpRun, through the
//     protocol package queue), then the four parts that run together: the
//     feed, the dispatch, the collector and the fleet's watch.
//  3. input.go: feed reads a line of the urls file. A line that is no URL
//     becomes an invalid_url record at once (sink.go); a URL becomes a task
//     whose ID is its line number, at the back of its host's queue. With
//     --sitemap, the first line of a host starts the reading of its
//     sitemaps (sitemap.go, sitemapxml.go), whose URLs join the host's log
//     as a crawl's links do (step 6), each with its lastmod; the run is not
//     done while a host's sitemaps are being read.
//  4. frontier.go: dispatch releases tasks to the task stream, round-robin
//     across hosts, within the window and each host's limit, once the host's
//     robots.txt is known (robots.go); robots.txt refusals become records.
//     With --session, publish gives each task the Cookie header the run's
//     jar holds for its URL (session.go); with --since, the validators of
//     its URL's record in the earlier output (since.go, which reads that
//     output before the run starts).
//     With --render always, each task is a render task, which publish
//     sends to the render subject (a batch is all render tasks or none).
//  5. The worker (package worker) fetches the page and publishes its result,
//     with others of the same few milliseconds; queue/batch.go is how tasks
//     and results are encoded, several to a message, and queue/compress.go
//     how a result message is compressed. A render task is pulled only by
//     a worker with a browser (worker/render.go, package render), which
//     loads it in a tab.
//  6. collect.go: the collector reads results (record.go writes each as
//     JSON, without reflection, the task's lastmod and a --structured
//     page's data, checked, included); frontier.answer decides: the
//     final record of its task (write), another attempt (retry.go: which
//     failures, how long to wait; with --render auto, a page the worker
//     judged script-made goes again at once as a render task, answer.go,
//     unless no worker can render: then its plain record is written,
//     marked needs_render, render.go),
//     or a duplicate (drop). A host that keeps
//     failing to be reached has its breaker open (breaker.go): its tasks
//     wait for one probe, and are recorded host_unreachable if it fails.
//     With --session the cookies the page set go to the jar (session.go,
//     which checks they are for the task's own site) before its links are
//     queued. With --since a 304 gets the earlier record's page, read back
//     from the earlier output, and a body of the earlier sum is marked
//     unchanged (since.go). crawl.go turns a
//     written page's links within the crawl's scope (--same-host,
//     --allow-domain, --match, --exclude) into candidates at the
//     back of their host's log (backlog.go): straight into the host's queue
//     while the frontier's memory has room and nothing waits before them,
//     otherwise to the frontier's segment files on disk (spill.go), read
//     back a chunk at a time as the host's queue drains.
//     At the end of the run, with nothing left to release and places to
//     spare, a task held long by a node much slower than another is
//     offered again, in a message of its own (tail.go), which the worker
//     holding it leaves to another node (worker/pull.go); the first answer
//     is written.
//  7. sink.go: the one writer of the output, and of the WARC archive
//     (--warc, or -o crawl.warc.gz: output/warc.go), which gets the page's
//     request and response with its record and keeps no body. Each record's task is marked
//     done in the journal; the collector writes the candidates found to
//     disk, then a flush makes the output durable and commits the journal
//     (journal.go) with the output's position and where the candidates
//     went. Now and then the collector checkpoints the run (checkpoint.go)
//     and empties the journal, so a resume reads a bounded amount.
//  8. coordinator.go: finish, once nothing is outstanding: the queue is
//     dropped, the output synced and closed, the state directory removed.
//     A run that fails or is interrupted keeps it instead (keepForResume).
//
// # Where exactly-once lives
//
//   - Task IDs: an input line's task is its line number, a crawled page's an
//     ID above crawlIDBase, given when its link is found and written with
//     it in its host's log, so a replay of the log gives it the same ID
//     (input.go, crawl.go, spill.go).
//   - Publishing: tasks go several to a message (queue/batch.go), whose
//     message ID is its first task and attempt, so the task stream drops a
//     batch published again after a lost answer (frontier.publish;
//     queue/queue.go's window). Workers never publish a result again.
//   - The worker acknowledges a batch of tasks only after the results of all
//     of them are stored in the result stream (worker/pull.go, publish.go);
//     a batch whose worker dies is redelivered after AckWait, and its next
//     worker fetches only the tasks still open (frontier.open, asked on the
//     run's open subject). After MaxDeliver deliveries its tasks are
//     recorded as worker_lost.
//   - frontier.answer accepts one result per pending task and attempt; any
//     other is dropped (answer.go), also the slower answer to a delivery
//     offered twice at the end of a run (tail.go).
//   - The collector acknowledges results only after the output holding them
//     is flushed and the journal committed (collect.go, sink.flush).
//   - A resume reads the last checkpoint and the journal's commits after it,
//     truncates the output to the last commit, skips the input lines with
//     a record, queues again the crawled pages admitted without one, and
//     reads the hosts' logs again from where the checkpoint left them,
//     passing over the pages the commits since name (checkpoint.go,
//     journal.go, output.Resume, frontier.restore).
//
// # Where politeness lives
//
// All of it in the coordinator, which alone sees the whole cluster: the
// per-host limit and round-robin (frontier.pick), robots.txt (robots.go,
// consulted in pick), retries' backoff and Retry-After (retry.go), the
// breaker that stops sending to a dead host (breaker.go), each host's pace:
// its limit in flight and its spacing, from --per-host, --delay and its
// Crawl-delay, lowered by its 429s and 503s and raised again by its
// successes (rate.go, kept by pick and moved by frontier.answer), and the
// spacing of requests to one host across every node (lease.go, which workers
// ask before each request of a spaced host: scrape.Task.Delay).
//
// # Workers
//
// fleet.go starts one worker per host through a Launcher (launcher.go: the
// scrape worker process, over the system ssh client for remote hosts, after
// pushing the build for the node's platform with push.go when asked; the
// node is asked what it is, and ssh's failures are worded, by package remote,
// as scrape check words them) and watches them; node.go is one node's life:
// start, bootstrap, hello, stop, reap. slots.go sizes each worker: its
// machinefile slots times --per-slot pages at a time, which its bootstrap
// carries, with the node's render=; its hello says how many pages it
// renders at a time, and watch counts those that render (render.go): with
// none, --render always fails (after --wait-workers, if given) and auto
// goes on with plain records. Workers that join by
// themselves with the run's join key are join.go's. relay.go puts the
// workers' output and the run's own lines on one stderr, which the progress
// bar (progress.go) takes over while it is drawn. Its figures: the input's
// size, counted ahead of feed in a pass of its own (input.go, countLines),
// what the frontier waits on (in flight, retries, robots.txt), and the pace
// of the last 20 s, which the ETA comes from.
package coordinator
