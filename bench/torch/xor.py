# XOR 2-10-1 sigmoid, full batch, float64, lr 0.1, E = sum((T - Y)^2) / (2N), in PyTorch.
# Prints microseconds per epoch (median of 3 runs).
import sys, time, torch
torch.set_num_threads(1)
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 20001
X = torch.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]], dtype=torch.float64)
T = torch.tensor([[0.], [1.], [1.], [0.]], dtype=torch.float64)
times = []
for run in range(3):
    torch.manual_seed(run)
    w1 = torch.rand(2, 10, dtype=torch.float64, requires_grad=True)
    b1 = torch.zeros(10, dtype=torch.float64, requires_grad=True)
    w2 = torch.rand(10, 1, dtype=torch.float64, requires_grad=True)
    b2 = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w1, b1, w2, b2], lr=0.1)
    start = time.perf_counter()
    for _ in range(epochs):
        y = torch.sigmoid(torch.sigmoid(X @ w1 + b1) @ w2 + b2)
        loss = ((T - y) ** 2).sum() / 8
        opt.zero_grad()
        loss.backward()
        opt.step()
    times.append(time.perf_counter() - start)
times.sort()
print(f"{1e6 * times[1] / epochs:.2f}")
