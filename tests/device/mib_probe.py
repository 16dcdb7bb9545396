"""How nvidia-smi turns bytes into MiB: NVML's bytes, then nvidia-smi's figures, then NVML's again (a row
counts only when both NVML reads agree), with 0 to 3 CUDA processes holding odd amounts of memory."""
import json, subprocess, sys, time
import pynvml as n

n.nvmlInit()
h = n.nvmlDeviceGetHandleByIndex(0)

def nvml():
    m = n.nvmlDeviceGetMemoryInfo(h, version=n.nvmlMemory_v2)
    procs = sorted((p.pid, p.usedGpuMemory) for p in n.nvmlDeviceGetComputeRunningProcesses(h))
    return (m.total, m.reserved, m.used, m.free, tuple(procs))

def smi():
    a = subprocess.run(["nvidia-smi", "--query-gpu=memory.total,memory.reserved,memory.used,memory.free",
                        "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout.strip()
    b = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                       capture_output=True, text=True).stdout.strip()
    return a, b

rows, kids = [], []
child = ("import torch,sys,time; x=torch.empty(int(sys.argv[1])*1024*1024+12345,dtype=torch.uint8,device='cuda');"
         "torch.cuda.synchronize(); print('ready',flush=True); time.sleep(120)")
for size in [None, 1003, 2222, 517]:
    if size:
        p = subprocess.Popen([sys.executable, "-c", child, str(size)], stdout=subprocess.PIPE, text=True)
        p.stdout.readline()
        kids.append(p)
        time.sleep(1)
    for _ in range(3):
        a = nvml(); s = smi(); b = nvml()
        if a == b:
            rows.append({"nvml": a, "smi": s})
            break
for p in kids:
    p.kill()
print(json.dumps(rows, indent=1))
