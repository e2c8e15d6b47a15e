// The part of fs-ext's API perq uses (the package ships no types).
declare module 'fs-ext' {
  export type FlockFlag = 'sh' | 'ex' | 'shnb' | 'exnb' | 'un';
  export function flockSync(fd: number, flags: FlockFlag): void;
  export function flock(fd: number, flags: FlockFlag, callback: (error: NodeJS.ErrnoException | null) => void): void;
  const fsExt: { flockSync: typeof flockSync; flock: typeof flock };
  export default fsExt;
}
