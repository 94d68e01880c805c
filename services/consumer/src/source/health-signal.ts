/** Whether a subscription can be read now, with listeners told of every change (both pull modes). */
export class HealthSignal {
  private healthy = false;
  private readonly listeners: ((healthy: boolean) => void)[] = [];

  get value(): boolean {
    return this.healthy;
  }

  listen(listener: (healthy: boolean) => void): void {
    this.listeners.push(listener);
  }

  set(healthy: boolean): void {
    if (healthy === this.healthy) return;
    this.healthy = healthy;
    for (const l of this.listeners) l(healthy);
  }
}
