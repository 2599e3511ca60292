# Fashion-MNIST 784-100-10 ReLU, cross-entropy, batch 64, SGD lr 0.1, one epoch, one thread,
# in PyTorch. Argument: float32 or float64. Prints seconds per epoch (median of 3).
import gzip, sys, time, numpy as np, torch
torch.set_num_threads(1)
dtype = torch.float64 if sys.argv[1] == "float64" else torch.float32
folder = "/usr/share/datasets/fashion-mnist/"
with gzip.open(folder + "train-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
with gzip.open(folder + "train-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)
x_all = torch.tensor(images, dtype=dtype) / 255
y_all = torch.tensor(labels, dtype=torch.long)
times = []
for run in range(3):
    torch.manual_seed(run)
    model = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10)).to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    order = torch.randperm(60000)
    start = time.perf_counter()
    for first in range(0, 60000, 64):
        idx = order[first:first + 64]
        loss = torch.nn.functional.cross_entropy(model(x_all[idx]), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    times.append(time.perf_counter() - start)
times.sort()
print(f"{times[1]:.3f}")
