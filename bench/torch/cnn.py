# The Fashion-MNIST CNN of examples/fashion_cnn.cpp in PyTorch: conv(1->32, 3x3, pad 1), ReLU,
# max-pool 2, conv(32->64, 3x3, pad 1), ReLU, max-pool 2, flatten, dropout 0.25,
# linear(3136->128), ReLU, linear(10); cross-entropy, Adam 1e-3, batch 64, float32, one thread.
# Argument: the number of training images (60000 for an epoch). Prints "seconds base_kib
# peak_kib faults" for the training loop alone: the images are loaded before the clock starts, then
# the kernel's peak-memory mark is reset (/proc/self/clear_refs), so base is the resident
# memory with the data loaded, peak the most resident during the loop, and faults the minor
# page faults during the loop.
import gzip, resource, sys, time, numpy as np, torch
torch.set_num_threads(1)
count = int(sys.argv[1]) if len(sys.argv) > 1 else 60000
folder = "/usr/share/datasets/fashion-mnist/"
with gzip.open(folder + "train-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:count]
with gzip.open(folder + "train-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)[:count]
x_all = torch.tensor(images, dtype=torch.float32) / 255
y_all = torch.tensor(labels, dtype=torch.long)
del images


def status_kib(field):
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith(field + ":")).split()[1])


with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status_kib("VmRSS")
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.manual_seed(1)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Flatten(), torch.nn.Dropout(0.25),
    torch.nn.Linear(3136, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
order = torch.randperm(count)
start = time.perf_counter()
for first in range(0, count, 64):
    idx = order[first:first + 64]
    loss = torch.nn.functional.cross_entropy(model(x_all[idx]), y_all[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
seconds = time.perf_counter() - start
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
print(f"{seconds:.3f} {base} {status_kib('VmHWM')} {faults}")
