/** A small LRU over Map's insertion order. */
export class LruCache<K, V> {
  private readonly map = new Map<K, V>()
  constructor (private readonly max: number) {}
  get size (): number { return this.map.size }
  get (key: K): V | undefined {
    const v = this.map.get(key)
    if (v !== undefined) {
      this.map.delete(key)
      this.map.set(key, v)
    }
    return v
  }
  set (key: K, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K)
  }
  delete (key: K): void { this.map.delete(key) }
  clear (): void { this.map.clear() }
}
