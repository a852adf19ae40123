"""The README's first command, headless: repo-layout/demo.sh builds nothing
here (EGRESSD is the binary under test), makes the signed config repo and
the three clusters (emulated, or real with EGRESSD_TEST_APISERVER=real), runs the daemon for a while, and every cluster
of the example's Fleet reaches the example's commit."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import kubelib


class DemoTest(unittest.TestCase):
    def test_demo_rolls_the_example_out_to_every_cluster(self):
        tmp = tempfile.mkdtemp(prefix="egressd-demo-")
        self.addCleanup(shutil.rmtree, tmp, True)
        env = dict(os.environ, DEMO_DIR=tmp, DEMO_SECONDS="45", EGRESSD=kubelib.egressd_binary(),
                   DEMO_APISERVER=kubelib.APISERVER)
        p = subprocess.run(["sh", os.path.join(kubelib.SOURCE_DIR, "repo-layout", "demo.sh")], env=env,
                           capture_output=True, text=True, timeout=180)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        commit = subprocess.run(["git", "-C", os.path.join(tmp, "config-repo"), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        self.assertIn("rollout of %s complete" % commit[:12], p.stdout + p.stderr)
        with open(os.path.join(tmp, "run", "status.json")) as f:
            st = json.load(f)
        self.assertEqual(st["target"]["commit"], commit)
        self.assertTrue(st["target"]["verified"])
        self.assertEqual({c["name"]: (c["phase"], c["applied"]) for c in st["clusters"]},
                         {n: ("done", commit) for n in ("canary", "prod-eu", "prod-us")})
        self.assertIn("== stopped; everything is left in %s" % tmp, p.stdout)
        # the clusters were stopped with the demo
        self.assertFalse(os.path.exists(os.path.join(tmp, "clusters", "ready")))


if __name__ == "__main__":
    unittest.main()
