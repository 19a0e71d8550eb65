"""``python -m pairforge.train CONFIG`` (handy under ``torchrun --nproc_per_node N -m pairforge.train``)."""
import typer

from pairforge.train.cli import train_command

if __name__ == "__main__":
    typer.run(train_command)
