// A job that runs now and then on a timer or on demand: never two runs at once, none after stop, stop awaits the run.

/** Such jobs: the embedded PGlite's upkeep (checkpoints, vacuums), the activity log's retention, the lease's watch. */
export class PeriodicJob {
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  /** `work` gets whether the job was stopped meanwhile, to end a long run early; its errors are its own to log. */
  constructor(private readonly work: (stopped: () => boolean) => Promise<void>) {}

  /** Runs every `everyMs` while `when()` says so; the timer never keeps the process alive. */
  every(everyMs: number, when: () => boolean = () => true): void {
    this.timer = setInterval(() => {
      if (when()) void this.run();
    }, everyMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Starts a run, or returns the one under way. */
  run(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.running ??= this.work(() => this.stopped).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }
}
