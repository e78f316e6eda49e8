/* The GEMM libraries this machine offers, side by side: oneDNN's dnnl_sgemm (what fmodel calls),
   BLIS's bli_sgemm and Debian OpenBLAS's cblas_sgemm (loaded as it is: it follows
   OPENBLAS_CORETYPE), on 2048³ and on FaceNet-shaped products; best of 3, GFLOP/s.

     sudo apt-get install libdnnl-dev libblis-dev libopenblas-dev
     gcc -O2 Benchmarks/gemm_libraries.c -o /tmp/gemm_libraries \
         -I/usr/include/x86_64-linux-gnu -include blis.h -ldnnl -lblis -ldl -lm
     OMP_NUM_THREADS=2 /tmp/gemm_libraries
*/
#include <stdlib.h>
#include <time.h>
#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>

static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
typedef void (*cblas_t)(int,int,int,int,int,int,float,const float*,int,const float*,int,float,float*,int);
int main(int argc,char**argv){
  int shapes[][3]={{2048,2048,2048},{9248,32,256},{9248,128,896},{2048,192,1152},{64,896,896},{64,128,1344},{9,1792,1792},{1,2048,1792}};
  void*h=dlopen("libopenblas.so.0",RTLD_NOW); cblas_t cb=(cblas_t)dlsym(h,"cblas_sgemm");
  bli_thread_set_num_threads(2);
  for(int s=0;s<8;s++){int M=shapes[s][0],N=shapes[s][1],K=shapes[s][2];
    float*A=malloc(4L*M*K),*B=malloc(4L*K*N),*C=malloc(4L*M*N);
    for(long i=0;i<(long)M*K;i++)A[i]=(i%7)*0.1f; for(long i=0;i<(long)K*N;i++)B[i]=(i%5)*0.1f;
    double fl=2.0*M*N*K; int reps= fl>1e9?5: (int)(3e9/fl)+1;
    double best[3]={1e9,1e9,1e9};
    for(int r=0;r<3;r++){
      double t=now(); for(int i=0;i<reps;i++) dnnl_sgemm('N','N',M,N,K,1.f,A,K,B,N,0.f,C,N); t=(now()-t)/reps; if(t<best[0])best[0]=t;
      float one=1,zero=0;
      t=now(); for(int i=0;i<reps;i++) bli_sgemm(BLIS_NO_TRANSPOSE,BLIS_NO_TRANSPOSE,M,N,K,&one,(float*)A,K,1,(float*)B,N,1,&zero,C,N,1); t=(now()-t)/reps; if(t<best[1])best[1]=t;
      t=now(); for(int i=0;i<reps;i++) cb(101,111,111,M,N,K,1.f,A,K,B,N,0.f,C,N); t=(now()-t)/reps; if(t<best[2])best[2]=t;
    }
    printf("M=%5d N=%5d K=%5d  dnnl %6.1f  blis %6.1f  openblas %6.1f GFLOP/s\n",M,N,K,fl/best[0]/1e9,fl/best[1]/1e9,fl/best[2]/1e9);
    free(A);free(B);free(C);}
}
